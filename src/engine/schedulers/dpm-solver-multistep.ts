/**
 * diffusers' DPMSolverMultistepScheduler: DPM-Solver / DPM-Solver++ (Lu et al. 2022) of order
 * 1-3 reusing past model outputs, and their SDE variants ("DPM++ 2M", "DPM++ 2M SDE" ...).
 */
import { SchedulerConfigError, f32, npRound, resolveConfig } from './common.ts';
import {
  VpSolverBase,
  alphaSigma,
  checkUnsupported,
  clippedStepCount,
  diffTimes,
  lambdaOf,
  linComb,
  requireRng,
  toDataPrediction,
  toInt64,
  toNoisePrediction,
  vpSigmas,
  vpSpacedTimesteps,
  withFinalSigma,
  type SigmaKind,
} from './multistep-common.ts';
import type { SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_lu_lambdas: false,
  use_flow_sigmas: false,
  flow_shift: 1.0,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};
export type DPMSolverMultistepConfig = typeof DEFAULTS;

const ALGORITHMS = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++'];

const exp32 = (x: number) => f32(Math.exp(x));

export class DPMSolverMultistepScheduler extends VpSolverBase {
  readonly name = 'DPMSolverMultistepScheduler';
  readonly config: DPMSolverMultistepConfig;
  private modelOutputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    checkUnsupported(this.name, c);
    const given = c.algorithm_type;
    if (!ALGORITHMS.includes(given)) {
      // diffusers maps DEIS configs onto DPM-Solver++ and refuses anything else
      if (given !== 'deis') {
        throw new SchedulerConfigError(`${this.name}: algorithm_type "${given}" must be one of ${ALGORITHMS.join(', ')}`);
      }
      c.algorithm_type = 'dpmsolver++';
    }
    if (c.solver_type !== 'midpoint' && c.solver_type !== 'heun') {
      if (!['logrho', 'bh1', 'bh2'].includes(c.solver_type)) {
        throw new SchedulerConfigError(`${this.name}: solver_type "${c.solver_type}" must be "midpoint" or "heun"`);
      }
      c.solver_type = 'midpoint';
    }
    // diffusers checks the algorithm as given, so a DEIS config with a zero final sigma fails too
    if (given !== 'dpmsolver++' && given !== 'sde-dpmsolver++' && c.final_sigmas_type === 'zero') {
      throw new SchedulerConfigError(
        `${this.name}: final_sigmas_type "zero" is not supported for algorithm_type "${given}"; set final_sigmas_type to "sigma_min"`,
      );
    }
    if (c.algorithm_type === 'sde-dpmsolver' && c.solver_order === 3) {
      // diffusers has no third-order sde-dpmsolver update and fails when it reaches one
      throw new SchedulerConfigError(`${this.name}: algorithm_type "sde-dpmsolver" supports solver_order 1 or 2`);
    }
    if (c.final_sigmas_type !== 'zero' && c.final_sigmas_type !== 'sigma_min') {
      throw new SchedulerConfigError(`${this.name}: final_sigmas_type must be "zero" or "sigma_min"`);
    }
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
      throw new SchedulerConfigError(`num_inference_steps must be a positive integer, got ${numInferenceSteps}`);
    }
    const last = c.num_train_timesteps - clippedStepCount(this.train, c.lambda_min_clipped);
    const spaced = vpSpacedTimesteps(c.timestep_spacing, numInferenceSteps, c.num_train_timesteps, c.steps_offset, last);
    // diffusers' precedence when several are set: Karras, then Lu, then exponential
    const kind: SigmaKind = c.use_karras_sigmas
      ? 'karras'
      : c.use_lu_lambdas
        ? 'lu'
        : c.use_exponential_sigmas
          ? 'exponential'
          : 'plain';
    let { sigmas, timesteps } = vpSigmas(kind, spaced, numInferenceSteps, this.train);
    // Karras and Lu timesteps are rounded, except for the cosine schedule; all are then cast to int64
    if ((kind === 'karras' || kind === 'lu') && c.beta_schedule !== 'squaredcos_cap_v2') {
      timesteps = timesteps.map(npRound);
    }
    this.timesteps = timesteps.map(toInt64);
    this.sigmas = withFinalSigma(sigmas, c.final_sigmas_type === 'sigma_min' ? this.train.sigmas[0] : 0);
    this.modelOutputs = new Array<Float32Array | null>(c.solver_order).fill(null);
    this.lowerOrderNums = 0;
    this.resetRun();
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    const c = this.config;
    const idx = this.currentIndex(t);
    const n = this.timesteps.length;
    const lowerOrderFinal =
      idx === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === 'zero');
    const lowerOrderSecond = idx === n - 2 && c.lower_order_final && n < 15;

    const converted = this.convert(modelOutput, sample, idx);
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);
    const noise = c.algorithm_type.startsWith('sde-') ? requireRng(this.name, rng).randn(sample.length) : null;

    let prevSample: Float32Array;
    if (c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      prevSample = this.firstOrder(converted, sample, noise, idx);
    } else if (c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
      prevSample = this.secondOrder(sample, noise, idx);
    } else {
      prevSample = this.thirdOrder(sample, noise, idx);
    }
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.stepIndex = idx + 1;
    return { prevSample };
  }

  /** DPM-Solver++ integrates the data prediction, DPM-Solver the noise prediction. */
  private convert(modelOutput: Float32Array, sample: Float32Array, idx: number): Float32Array {
    const a = alphaSigma(this.sigmas[idx]);
    const pt = this.config.prediction_type;
    return this.config.algorithm_type.endsWith('++')
      ? toDataPrediction(pt, modelOutput, sample, a)
      : toNoisePrediction(pt, modelOutput, sample, a);
  }

  private output(k: number): Float32Array {
    const m = this.modelOutputs[this.modelOutputs.length - k];
    if (!m) throw new Error('DPMSolverMultistepScheduler: missing a past model output');
    return m;
  }

  private firstOrder(m: Float32Array, x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s = alphaSigma(this.sigmas[idx]);
    const h = f32(lambdaOf(t) - lambdaOf(s));
    switch (this.config.algorithm_type) {
      case 'dpmsolver++':
        return linComb([f32(t.sigma / s.sigma), -f32(t.alpha * f32(exp32(-h) - 1))], [x, m]);
      case 'dpmsolver':
        return linComb([f32(t.alpha / s.alpha), -f32(t.sigma * f32(exp32(h) - 1))], [x, m]);
      case 'sde-dpmsolver++': {
        const decay = f32(1 - exp32(f32(-2 * h)));
        return linComb(
          [f32(f32(t.sigma / s.sigma) * exp32(-h)), f32(t.alpha * decay), f32(t.sigma * f32(Math.sqrt(decay)))],
          [x, m, noise as Float32Array],
        );
      }
      default: {
        const growth = f32(t.sigma * f32(exp32(h) - 1));
        return linComb(
          [f32(t.alpha / s.alpha), -f32(2 * growth), f32(t.sigma * f32(Math.sqrt(f32(exp32(f32(2 * h)) - 1))))],
          [x, m, noise as Float32Array],
        );
      }
    }
  }

  private secondOrder(x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const c = this.config;
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigma(this.sigmas[idx]);
    const s1 = alphaSigma(this.sigmas[idx - 1]);
    const lt = lambdaOf(t);
    const l0 = lambdaOf(s0);
    const l1 = lambdaOf(s1);
    const m0 = this.output(1);
    const m1 = this.output(2);
    const h = f32(lt - l0);
    const r0 = f32(f32(l0 - l1) / h);
    const d1 = diffTimes(m0, m1, f32(1 / r0));
    const heun = c.solver_type === 'heun';
    switch (c.algorithm_type) {
      case 'dpmsolver++': {
        const em1 = f32(exp32(-h) - 1);
        const a = f32(t.alpha * em1);
        const k1 = heun ? f32(t.alpha * f32(f32(em1 / h) + 1)) : -f32(0.5 * a);
        return linComb([f32(t.sigma / s0.sigma), -a, k1], [x, m0, d1]);
      }
      case 'dpmsolver': {
        const ep1 = f32(exp32(h) - 1);
        const b = f32(t.sigma * ep1);
        const k1 = heun ? -f32(t.sigma * f32(f32(ep1 / h) - 1)) : -f32(0.5 * b);
        return linComb([f32(t.alpha / s0.alpha), -b, k1], [x, m0, d1]);
      }
      case 'sde-dpmsolver++': {
        const decay = f32(1 - exp32(f32(-2 * h)));
        const a = f32(t.alpha * decay);
        const k1 = heun ? f32(t.alpha * f32(f32(decay / f32(-2 * h)) + 1)) : f32(0.5 * a);
        return linComb(
          [f32(f32(t.sigma / s0.sigma) * exp32(-h)), a, k1, f32(t.sigma * f32(Math.sqrt(decay)))],
          [x, m0, d1, noise as Float32Array],
        );
      }
      default: {
        const ep1 = f32(exp32(h) - 1);
        const b = f32(t.sigma * ep1);
        const k1 = heun ? -f32(2 * f32(t.sigma * f32(f32(ep1 / h) - 1))) : -b;
        return linComb(
          [f32(t.alpha / s0.alpha), -f32(2 * b), k1, f32(t.sigma * f32(Math.sqrt(f32(exp32(f32(2 * h)) - 1))))],
          [x, m0, d1, noise as Float32Array],
        );
      }
    }
  }

  private thirdOrder(x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const c = this.config;
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigma(this.sigmas[idx]);
    const s1 = alphaSigma(this.sigmas[idx - 1]);
    const s2 = alphaSigma(this.sigmas[idx - 2]);
    const [lt, l0, l1, l2] = [lambdaOf(t), lambdaOf(s0), lambdaOf(s1), lambdaOf(s2)];
    const m0 = this.output(1);
    const m1 = this.output(2);
    const m2 = this.output(3);
    const h = f32(lt - l0);
    const r0 = f32(f32(l0 - l1) / h);
    const r1 = f32(f32(l1 - l2) / h);
    const d10 = diffTimes(m0, m1, f32(1 / r0));
    const d11 = diffTimes(m1, m2, f32(1 / r1));
    const rSum = f32(r0 + r1);
    const w = f32(r0 / rSum);
    const inv = f32(1 / rSum);
    const d1 = new Float32Array(x.length);
    const d2 = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const diff = f32(d10[i] - d11[i]);
      d1[i] = d10[i] + f32(w * diff);
      d2[i] = inv * diff;
    }
    switch (c.algorithm_type) {
      case 'dpmsolver++': {
        const em1 = f32(exp32(-h) - 1);
        return linComb(
          [
            f32(t.sigma / s0.sigma),
            -f32(t.alpha * em1),
            f32(t.alpha * f32(f32(em1 / h) + 1)),
            -f32(t.alpha * f32(f32(f32(em1 + h) / f32(h * h)) - 0.5)),
          ],
          [x, m0, d1, d2],
        );
      }
      case 'dpmsolver': {
        const ep1 = f32(exp32(h) - 1);
        return linComb(
          [
            f32(t.alpha / s0.alpha),
            -f32(t.sigma * ep1),
            -f32(t.sigma * f32(f32(ep1 / h) - 1)),
            -f32(t.sigma * f32(f32(f32(ep1 - h) / f32(h * h)) - 0.5)),
          ],
          [x, m0, d1, d2],
        );
      }
      default: {
        // sde-dpmsolver++ (the constructor refuses a third-order sde-dpmsolver)
        const h2 = f32(2 * h);
        const decay = f32(1 - exp32(f32(-2 * h)));
        return linComb(
          [
            f32(f32(t.sigma / s0.sigma) * exp32(-h)),
            f32(t.alpha * decay),
            f32(t.alpha * f32(f32(decay / f32(-2 * h)) + 1)),
            f32(t.alpha * f32(f32(f32(decay - h2) / f32(h2 * h2)) - 0.5)),
            f32(t.sigma * f32(Math.sqrt(decay))),
          ],
          [x, m0, d1, d2, noise as Float32Array],
        );
      }
    }
  }
}

export function createDPMSolverMultistepScheduler(config?: SchedulerConfig): DPMSolverMultistepScheduler {
  return new DPMSolverMultistepScheduler(config);
}
