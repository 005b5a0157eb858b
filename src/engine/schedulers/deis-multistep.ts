/**
 * diffusers' DEISMultistepScheduler (Zhang & Chen 2022): multistep exponential integrator in
 * log-rho time, with the noise prediction extrapolated by Lagrange polynomials of order 1-3.
 */
import { SchedulerConfigError, f32, npRound, requirePositiveInt, resolveConfig, vpSpacedTimesteps } from './common.ts';
import {
  VP_SOLVER_DEFAULTS,
  VpSolverBase,
  alphaSigma,
  checkUnsupported,
  lambdaOf,
  linComb,
  sigmaKindOf,
  toDataPrediction,
  vpSigmas,
} from './multistep-common.ts';
import type { SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  ...VP_SOLVER_DEFAULTS,
  algorithm_type: 'deis',
  solver_type: 'logrho',
  lower_order_final: true,
  timestep_spacing: 'linspace',
  steps_offset: 0,
};
export type DEISMultistepConfig = typeof DEFAULTS;

const log32 = (x: number) => f32(Math.log(x));

/** ∫ of the order-2 Lagrange basis in log-rho time (diffusers' ind_fn, float32). */
function ind2(t: number, b: number, c: number): number {
  const [lt, lb, lc] = [log32(t), log32(b), log32(c)];
  return f32(f32(t * f32(f32(-lc + lt) - 1)) / f32(lb - lc));
}

/** ∫ of the order-3 Lagrange basis in log-rho time (diffusers' ind_fn, float32). */
function ind3(t: number, b: number, c: number, d: number): number {
  const [lt, lb, lc, ld] = [log32(t), log32(b), log32(c), log32(d)];
  let num = f32(lc * f32(f32(ld - lt) + 1));
  num = f32(num - f32(ld * lt));
  num = f32(num + ld);
  num = f32(num + f32(lt * lt));
  num = f32(num - f32(2 * lt));
  num = f32(num + 2);
  return f32(f32(t * num) / f32(f32(lb - lc) * f32(lb - ld)));
}

export class DEISMultistepScheduler extends VpSolverBase {
  readonly name = 'DEISMultistepScheduler';
  readonly config: DEISMultistepConfig;
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    checkUnsupported(this.name, c);
    if (c.algorithm_type !== 'deis') {
      if (c.algorithm_type !== 'dpmsolver' && c.algorithm_type !== 'dpmsolver++') {
        throw new SchedulerConfigError(`${this.name}: algorithm_type "${c.algorithm_type}" is not supported (use "deis")`);
      }
      c.algorithm_type = 'deis';
    }
    if (c.solver_type !== 'logrho') {
      if (!['midpoint', 'heun', 'bh1', 'bh2'].includes(c.solver_type)) {
        throw new SchedulerConfigError(`${this.name}: solver_type "${c.solver_type}" is not supported (use "logrho")`);
      }
      c.solver_type = 'logrho';
    }
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const spaced = vpSpacedTimesteps(c.timestep_spacing, numInferenceSteps, c.num_train_timesteps, c.steps_offset);
    const kind = sigmaKindOf(c);
    let { sigmas, timesteps } = vpSigmas(kind, spaced, numInferenceSteps, this.train);
    if (kind === 'karras') timesteps = timesteps.map(npRound);
    // DEIS ends on the smallest training sigma, or repeats the last Karras / exponential one
    const finalSigma = kind === 'plain' ? this.train.sigmas[0] : sigmas[sigmas.length - 1];
    this.setSchedule(timesteps, sigmas, finalSigma, c.solver_order);
    this.lowerOrderNums = 0;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const c = this.config;
    const idx = this.currentIndex(t);
    const n = this.timesteps.length;
    const lowerOrderFinal = idx === n - 1 && c.lower_order_final && n < 15;
    const lowerOrderSecond = idx === n - 2 && c.lower_order_final && n < 15;

    // DEIS integrates the noise prediction, recovered from the data prediction
    const a = alphaSigma(this.sigmas[idx]);
    const x0 = toDataPrediction(c.prediction_type, modelOutput, sample, a);
    const eps = new Float32Array(sample.length);
    for (let i = 0; i < eps.length; i++) eps[i] = f32(sample[i] - f32(a.alpha * x0[i])) / a.sigma;
    this.pushOutput(eps);

    let prevSample: Float32Array;
    if (c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) prevSample = this.firstOrder(eps, sample, idx);
    else if (c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) prevSample = this.higherOrder(sample, idx, 2);
    else prevSample = this.higherOrder(sample, idx, 3);
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.finishStep(idx);
    return { prevSample };
  }

  private firstOrder(m: Float32Array, x: Float32Array, idx: number): Float32Array {
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s = alphaSigma(this.sigmas[idx]);
    const h = f32(lambdaOf(t) - lambdaOf(s));
    return linComb([f32(t.alpha / s.alpha), -f32(t.sigma * f32(f32(Math.exp(h)) - 1))], [x, m]);
  }

  /** x_t = α_t·(x/α_s0 + Σ coef_k·m_k), coefficients from the Lagrange integrals in log rho. */
  private higherOrder(x: Float32Array, idx: number, order: 2 | 3): Float32Array {
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s = [0, 1, 2].slice(0, order).map((k) => alphaSigma(this.sigmas[idx - k]));
    const rhoT = f32(t.sigma / t.alpha);
    const rho = s.map((a) => f32(a.sigma / a.alpha));
    let coefs: number[];
    if (order === 2) {
      const [r0, r1] = rho;
      coefs = [f32(ind2(rhoT, r0, r1) - ind2(r0, r0, r1)), f32(ind2(rhoT, r1, r0) - ind2(r0, r1, r0))];
    } else {
      const [r0, r1, r2] = rho;
      coefs = [
        f32(ind3(rhoT, r0, r1, r2) - ind3(r0, r0, r1, r2)),
        f32(ind3(rhoT, r1, r2, r0) - ind3(r0, r1, r2, r0)),
        f32(ind3(rhoT, r2, r0, r1) - ind3(r0, r2, r0, r1)),
      ];
    }
    const ms = coefs.map((_, k) => this.output(k + 1));
    const alphaS0 = s[0].alpha;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      let acc = f32(x[i] / alphaS0);
      for (let k = 0; k < coefs.length; k++) acc = f32(acc + f32(coefs[k] * ms[k][i]));
      out[i] = t.alpha * acc;
    }
    return out;
  }
}

export function createDEISMultistepScheduler(config?: SchedulerConfig): DEISMultistepScheduler {
  return new DEISMultistepScheduler(config);
}
