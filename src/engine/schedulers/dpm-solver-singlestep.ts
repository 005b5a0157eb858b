/**
 * diffusers' DPMSolverSinglestepScheduler: DPM-Solver / DPM-Solver++ whose higher-order steps
 * are split into model calls that all start from the same sample (A1111's "DPM++ SDE" maps here).
 */
import { SchedulerConfigError, f32, npRound, requirePositiveInt, resolveConfig, vpSpacedTimesteps } from './common.ts';
import { dpmFirstOrder, dpmSecondOrder, exp32, normalizeDpmSolverConfig } from './dpm-solver-common.ts';
import {
  VP_SOLVER_DEFAULTS,
  VpSolverBase,
  alphaSigma,
  checkFinalSigmasType,
  checkUnsupported,
  clippedStepCount,
  convertModelOutput,
  diffTimes,
  lambdaOf,
  linComb,
  requireRng,
  sigmaKindOf,
  vpSigmas,
} from './multistep-common.ts';
import type { SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  ...VP_SOLVER_DEFAULTS,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: false,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
};
export type DPMSolverSinglestepConfig = typeof DEFAULTS;

const ALGORITHMS = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver++'];

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
  private orders: number[] = [];
  /** The sample every step of the current 1-2(-3) group starts from. */
  private groupSample: Float32Array | null = null;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    super(c);
    this.config = c;
    checkUnsupported(this.name, c);
    normalizeDpmSolverConfig(this.name, c, ALGORITHMS);
    checkFinalSigmasType(this.name, c.final_sigmas_type);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    // this scheduler knows only linspace spacing, ending at the lambda_min_clipped bound
    const last = c.num_train_timesteps - clippedStepCount(this.train, c.lambda_min_clipped);
    const spaced = vpSpacedTimesteps('linspace', numInferenceSteps, c.num_train_timesteps, 0, last);
    const kind = sigmaKindOf(c);
    let { sigmas, timesteps } = vpSigmas(kind, spaced, numInferenceSteps, this.train);
    if (kind === 'karras') timesteps = timesteps.map(npRound);
    this.setSchedule(timesteps, sigmas, c.final_sigmas_type === 'sigma_min' ? this.train.sigmas[0] : 0, c.solver_order);
    this.groupSample = null;
    // diffusers switches lower_order_final on for good (in its config) when the steps do not
    // divide into full groups or the schedule ends at sigma zero
    if (!c.lower_order_final && (numInferenceSteps % c.solver_order !== 0 || c.final_sigmas_type === 'zero')) {
      c.lower_order_final = true;
    }
    this.orders = singlestepOrders(numInferenceSteps, c.solver_order, c.lower_order_final, c.final_sigmas_type === 'zero');
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    const c = this.config;
    const idx = this.currentIndex(t);
    // DPM-Solver++ integrates the data prediction, DPM-Solver the noise prediction
    const a = alphaSigma(this.sigmas[idx]);
    const converted = convertModelOutput(c.algorithm_type.endsWith('++'), c.prediction_type, modelOutput, sample, a);
    this.pushOutput(converted);
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
    this.finishStep(idx);
    return { prevSample };
  }

  private firstOrder(m: Float32Array, x: Float32Array, noise: Float32Array | null, idx: number): Float32Array {
    return dpmFirstOrder(this.config.algorithm_type, alphaSigma(this.sigmas[idx + 1]), alphaSigma(this.sigmas[idx]), x, m, noise);
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
    return dpmSecondOrder(c.algorithm_type, c.solver_type === 'heun', t, s1, h, x, m1, d1, noise);
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
