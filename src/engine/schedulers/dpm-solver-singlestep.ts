/**
 * diffusers' DPMSolverSinglestepScheduler: DPM-Solver / DPM-Solver++ whose higher-order steps
 * are split into model calls that all start from the same sample (A1111's "DPM++ SDE" maps here).
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
  lower_order_final: false,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_flow_sigmas: false,
  flow_shift: 1.0,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};
export type DPMSolverSinglestepConfig = typeof DEFAULTS;

const ALGORITHMS = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver++'];

const exp32 = (x: number) => f32(Math.exp(x));

/** diffusers' get_order_list: the solver order of each step, grouped 1,2(,3) per sample. */
export function singlestepOrders(steps: number, order: number, lowerOrderFinal: boolean, finalZero: boolean): number[] {
  const repeat = (pattern: number[], times: number) => Array.from({ length: Math.max(times, 0) }, () => pattern).flat();
  let orders: number[];
  if (order === 1) orders = repeat([1], steps);
  else if (!lowerOrderFinal) orders = repeat(order === 3 ? [1, 2, 3] : [1, 2], Math.floor(steps / order));
  else if (order === 3) {
    const k = Math.floor(steps / 3);
    if (steps % 3 === 0) orders = [...repeat([1, 2, 3], k - 1), 1, 2, 1];
    else if (steps % 3 === 1) orders = [...repeat([1, 2, 3], k), 1];
    else orders = [...repeat([1, 2, 3], k), 1, 2];
  } else {
    const k = Math.floor(steps / 2);
    orders = steps % 2 === 0 ? [...repeat([1, 2], k - 1), 1, 1] : [...repeat([1, 2], k), 1];
  }
  if (finalZero && orders.length > 0) orders[orders.length - 1] = 1;
  return orders;
}

export class DPMSolverSinglestepScheduler extends VpSolverBase {
  readonly name = 'DPMSolverSinglestepScheduler';
  readonly config: DPMSolverSinglestepConfig;
  private modelOutputs: (Float32Array | null)[] = [];
  private orders: number[] = [];
  /** The sample every step of the current 1-2(-3) group starts from. */
  private groupSample: Float32Array | null = null;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    checkUnsupported(this.name, c);
    const given = c.algorithm_type;
    if (!ALGORITHMS.includes(given)) {
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
    if (given !== 'dpmsolver++' && given !== 'sde-dpmsolver++' && c.final_sigmas_type === 'zero') {
      throw new SchedulerConfigError(
        `${this.name}: final_sigmas_type "zero" is not supported for algorithm_type "${given}"; set final_sigmas_type to "sigma_min"`,
      );
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
    // this scheduler knows only linspace spacing, ending at the lambda_min_clipped bound
    const last = c.num_train_timesteps - clippedStepCount(this.train, c.lambda_min_clipped);
    const spaced = vpSpacedTimesteps('linspace', numInferenceSteps, c.num_train_timesteps, 0, last);
    const kind: SigmaKind = c.use_karras_sigmas ? 'karras' : c.use_exponential_sigmas ? 'exponential' : 'plain';
    let { sigmas, timesteps } = vpSigmas(kind, spaced, numInferenceSteps, this.train);
    if (kind === 'karras') timesteps = timesteps.map(npRound);
    this.timesteps = timesteps.map(toInt64);
    this.sigmas = withFinalSigma(sigmas, c.final_sigmas_type === 'sigma_min' ? this.train.sigmas[0] : 0);
    this.modelOutputs = new Array<Float32Array | null>(c.solver_order).fill(null);
    this.groupSample = null;
    // diffusers switches lower_order_final on for good (in its config) when the steps do not
    // divide into full groups or the schedule ends at sigma zero
    if (!c.lower_order_final && (numInferenceSteps % c.solver_order !== 0 || c.final_sigmas_type === 'zero')) {
      c.lower_order_final = true;
    }
    this.orders = singlestepOrders(numInferenceSteps, c.solver_order, c.lower_order_final, c.final_sigmas_type === 'zero');
    this.resetRun();
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    const c = this.config;
    const idx = this.currentIndex(t);
    const a = alphaSigma(this.sigmas[idx]);
    const converted = c.algorithm_type.endsWith('++')
      ? toDataPrediction(c.prediction_type, modelOutput, sample, a)
      : toNoisePrediction(c.prediction_type, modelOutput, sample, a);
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);
    const noise = c.algorithm_type === 'sde-dpmsolver++' ? requireRng(this.name, rng).randn(sample.length) : null;

    let order = this.orders[idx];
    if (order === undefined) throw new SchedulerConfigError(`${this.name}: step ${idx} is past the end of the schedule`);
    while (this.modelOutputs[this.modelOutputs.length - order] === null) order--;
    // the first step of a run always falls back to order 1, so the group sample is set by then
    if (order === 1) this.groupSample = sample;
    const x = this.groupSample as Float32Array;

    let prevSample: Float32Array;
    if (order === 1) prevSample = this.firstOrder(converted, x, noise, idx);
    else if (order === 2) prevSample = this.secondOrder(x, noise, idx);
    else prevSample = this.thirdOrder(x, noise, idx);
    this.stepIndex = idx + 1;
    return { prevSample };
  }

  private output(k: number): Float32Array {
    return this.modelOutputs[this.modelOutputs.length - k] as Float32Array;
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
      default: {
        const decay = f32(1 - exp32(f32(-2 * h)));
        return linComb(
          [f32(f32(t.sigma / s.sigma) * exp32(-h)), f32(t.alpha * decay), f32(t.sigma * f32(Math.sqrt(decay)))],
          [x, m, noise as Float32Array],
        );
      }
    }
  }

  /** Second order from the group's sample at s1 = idx − 1, with the outputs at s1 and s0 = idx. */
  private secondOrder(x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const c = this.config;
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigma(this.sigmas[idx]);
    const s1 = alphaSigma(this.sigmas[idx - 1]);
    const l1 = lambdaOf(s1);
    const m0 = this.output(1);
    const m1 = this.output(2);
    const h = f32(lambdaOf(t) - l1);
    const r0 = f32(f32(lambdaOf(s0) - l1) / h);
    const d1 = diffTimes(m0, m1, f32(1 / r0));
    const heun = c.solver_type === 'heun';
    switch (c.algorithm_type) {
      case 'dpmsolver++': {
        const em1 = f32(exp32(-h) - 1);
        const a = f32(t.alpha * em1);
        const k1 = heun ? f32(t.alpha * f32(f32(em1 / h) + 1)) : -f32(0.5 * a);
        return linComb([f32(t.sigma / s1.sigma), -a, k1], [x, m1, d1]);
      }
      case 'dpmsolver': {
        const ep1 = f32(exp32(h) - 1);
        const b = f32(t.sigma * ep1);
        const k1 = heun ? -f32(t.sigma * f32(f32(ep1 / h) - 1)) : -f32(0.5 * b);
        return linComb([f32(t.alpha / s1.alpha), -b, k1], [x, m1, d1]);
      }
      default: {
        const decay = f32(1 - exp32(f32(-2 * h)));
        const a = f32(t.alpha * decay);
        const k1 = heun ? f32(t.alpha * f32(f32(decay / f32(-2 * h)) + 1)) : f32(0.5 * a);
        return linComb(
          [f32(f32(t.sigma / s1.sigma) * exp32(-h)), a, k1, f32(t.sigma * f32(Math.sqrt(decay)))],
          [x, m1, d1, noise as Float32Array],
        );
      }
    }
  }

  /** Third order from the group's sample at s2 = idx − 2, with the outputs at s2, s1 and s0. */
  private thirdOrder(x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    const c = this.config;
    const t = alphaSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigma(this.sigmas[idx]);
    const s1 = alphaSigma(this.sigmas[idx - 1]);
    const s2 = alphaSigma(this.sigmas[idx - 2]);
    const l2 = lambdaOf(s2);
    const m0 = this.output(1);
    const m1 = this.output(2);
    const m2 = this.output(3);
    const h = f32(lambdaOf(t) - l2);
    const r0 = f32(f32(lambdaOf(s0) - l2) / h);
    const r1 = f32(f32(lambdaOf(s1) - l2) / h);
    const d10 = diffTimes(m1, m2, f32(1 / r1));
    const d11 = diffTimes(m0, m2, f32(1 / r0));
    const rDiff = f32(r0 - r1);
    const d1 = new Float32Array(x.length);
    const d2 = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      d1[i] = f32(f32(r0 * d10[i]) - f32(r1 * d11[i])) / rDiff;
      d2[i] = f32(2 * f32(d11[i] - d10[i])) / rDiff;
    }
    const heun = c.solver_type === 'heun';
    switch (c.algorithm_type) {
      case 'dpmsolver++': {
        const em1 = f32(exp32(-h) - 1);
        const k1 = f32(t.alpha * f32(f32(em1 / h) + 1));
        const base = [f32(t.sigma / s2.sigma), -f32(t.alpha * em1)];
        if (!heun) return linComb([...base, k1], [x, m2, d11]);
        const k2 = -f32(t.alpha * f32(f32(f32(em1 + h) / f32(h * h)) - 0.5));
        return linComb([...base, k1, k2], [x, m2, d1, d2]);
      }
      case 'dpmsolver': {
        const ep1 = f32(exp32(h) - 1);
        const k1 = -f32(t.sigma * f32(f32(ep1 / h) - 1));
        const base = [f32(t.alpha / s2.alpha), -f32(t.sigma * ep1)];
        if (!heun) return linComb([...base, k1], [x, m2, d11]);
        const k2 = -f32(t.sigma * f32(f32(f32(ep1 - h) / f32(h * h)) - 0.5));
        return linComb([...base, k1, k2], [x, m2, d1, d2]);
      }
      default: {
        const m2h = f32(-2 * h);
        const decay = f32(1 - exp32(m2h));
        const k1 = f32(t.alpha * f32(f32(decay / m2h) + 1));
        const base = [f32(f32(t.sigma / s2.sigma) * exp32(-h)), f32(t.alpha * decay)];
        const kNoise = f32(t.sigma * f32(Math.sqrt(decay)));
        if (!heun) return linComb([...base, k1, kNoise], [x, m2, d11, noise as Float32Array]);
        const k2 = f32(t.alpha * f32(f32(f32(decay + m2h) / f32(m2h * m2h)) - 0.5));
        return linComb([...base, k1, k2, kNoise], [x, m2, d1, d2, noise as Float32Array]);
      }
    }
  }
}

export function createDPMSolverSinglestepScheduler(config?: SchedulerConfig): DPMSolverSinglestepScheduler {
  return new DPMSolverSinglestepScheduler(config);
}
