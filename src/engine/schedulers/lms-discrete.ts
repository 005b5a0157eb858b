/** diffusers' LMSDiscreteScheduler: linear multistep (up to 4th order) over the k-diffusion sigmas. */
import { LINEAR_BETA_DEFAULTS, SIGMA_OPTION_DEFAULTS, f32, predictX0FromSigma, resolveConfig } from './common.ts';
import { SigmaSchedulerBase } from './sigma-base.ts';
import type { SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  ...SIGMA_OPTION_DEFAULTS,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};
export type LMSDiscreteConfig = typeof DEFAULTS;

const LMS_ORDER = 4;

// 8-point Gauss–Legendre nodes and weights on [-1, 1]: exact for polynomials up to degree 15,
// so the cubic (at most) Lagrange basis integrates to rounding error, as scipy's quad does.
const GL_NODES = [
  -0.9602898564975362, -0.7966664774136267, -0.525532409916329, -0.18343464249564978, 0.18343464249564978,
  0.525532409916329, 0.7966664774136267, 0.9602898564975362,
];
const GL_WEIGHTS = [
  0.10122853629037669, 0.22238103445337434, 0.31370664587788705, 0.36268378337836177, 0.36268378337836177,
  0.31370664587788705, 0.22238103445337434, 0.10122853629037669,
];

/** ∫ f over [a, b] by Gauss–Legendre quadrature. */
export function integrate(f: (x: number) => number, a: number, b: number): number {
  const mid = (a + b) / 2;
  const half = (b - a) / 2;
  let sum = 0;
  for (let i = 0; i < GL_NODES.length; i++) sum += GL_WEIGHTS[i] * f(mid + half * GL_NODES[i]);
  return half * sum;
}

/**
 * diffusers' get_lms_coefficient: the integral from σ_t to σ_{t+1} of the Lagrange basis
 * polynomial that is 1 at σ_{t−current} and 0 at the other σ_{t−k}, k < order.
 */
export function lmsCoefficient(sigmas: readonly number[], order: number, t: number, current: number): number {
  const basis = (tau: number) => {
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (k === current) continue;
      prod *= (tau - sigmas[t - k]) / (sigmas[t - current] - sigmas[t - k]);
    }
    return prod;
  };
  return integrate(basis, sigmas[t], sigmas[t + 1]);
}

export class LMSDiscreteScheduler extends SigmaSchedulerBase {
  readonly name = 'LMSDiscreteScheduler';
  readonly config: LMSDiscreteConfig;
  readonly order = 1;
  /** Newest last, at most LMS_ORDER. */
  private derivatives: Float32Array[] = [];

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    this.setTimesteps(c.num_train_timesteps);
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps);
    this.timesteps = timesteps;
    this.sigmas = sigmas;
    this.derivatives = [];
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    const sigma = this.sigmas[i];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigma);
    const n = sample.length;
    const derivative = new Float32Array(n);
    for (let k = 0; k < n; k++) derivative[k] = f32(sample[k] - x0[k]) / sigma;
    this.derivatives.push(derivative);
    if (this.derivatives.length > LMS_ORDER) this.derivatives.shift();
    const order = Math.min(i + 1, LMS_ORDER);
    // coefficient j weighs the derivative j steps back; torch casts each to float32
    const coeffs = Array.from({ length: order }, (_, j) => f32(lmsCoefficient(this.sigmas, order, i, j)));
    const acc = new Float32Array(n);
    // diffusers zips the coefficients with the derivatives it has: entered mid-schedule (img2img)
    // the first steps use fewer terms than `order`, still with the order-`order` coefficients
    const terms = Math.min(order, this.derivatives.length);
    for (let j = 0; j < terms; j++) {
      const d = this.derivatives[this.derivatives.length - 1 - j];
      for (let k = 0; k < n; k++) acc[k] = acc[k] + f32(coeffs[j] * d[k]);
    }
    const prev = new Float32Array(n);
    for (let k = 0; k < n; k++) prev[k] = sample[k] + acc[k];
    this.idx.index = i + 1;
    return { prevSample: prev, predOriginalSample: x0 };
  }
}
