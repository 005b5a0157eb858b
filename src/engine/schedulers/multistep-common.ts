/**
 * What diffusers' DPM-Solver (multistep and singlestep), UniPC and DEIS schedulers share: their
 * defaults and config checks, sigma schedules, step bookkeeping and float32 update arithmetic.
 * The training schedule, timestep spacing and sigma conversions are common.ts's.
 *
 * diffusers runs these solvers on 0-dim float32 tensors and float32 samples, and their higher
 * orders subtract nearby model outputs, so every scalar and element-wise op below is rounded to
 * float32 (`f32`) in the order torch evaluates it; that keeps full loops within ~1e-7 of diffusers.
 */
import {
  LINEAR_BETA_DEFAULTS,
  SIGMA_OPTION_DEFAULTS,
  SchedulerConfigError,
  StepIndex,
  descendingTimesteps,
  exponentialSigmas,
  f32,
  interpolateSigmas,
  karrasSigmas,
  npLinspace,
  sigmaToT,
  trainSchedule,
  type BetaConfig,
  type TrainSchedule,
} from './common.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

/** The defaults all four solvers share; each adds its algorithm's keys. */
export const VP_SOLVER_DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  ...SIGMA_OPTION_DEFAULTS,
  use_flow_sigmas: false,
  flow_shift: 1.0,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};

/** The config keys every one of these solvers reads besides the betas. */
export interface VpSolverConfig extends BetaConfig {
  prediction_type: string;
  thresholding: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  use_flow_sigmas: boolean;
  use_dynamic_shifting: boolean;
  solver_order: number;
  variance_type?: string | null;
}

/**
 * Rejects the options these ports do not carry, with the reason a user can act on, and the
 * combinations diffusers itself refuses.
 */
export function checkUnsupported(name: string, c: VpSolverConfig): void {
  const no = (what: string, why: string) => {
    throw new SchedulerConfigError(`${name}: ${what} is not supported by the local engine (${why})`);
  };
  if (c.thresholding) no('thresholding', 'it needs per-image quantiles; Stable Diffusion configs leave it off');
  if (c.variance_type === 'learned' || c.variance_type === 'learned_range') {
    no(`variance_type "${c.variance_type}"`, 'it is for models that also predict a variance; SD models do not');
  }
  if (c.use_beta_sigmas) no('use_beta_sigmas', 'use use_karras_sigmas or use_exponential_sigmas instead');
  if (c.use_flow_sigmas || c.use_dynamic_shifting || c.prediction_type === 'flow_prediction') {
    no('flow matching', 'it is for flow-matching models, not Stable Diffusion 1.x/2.x');
  }
  if ([c.use_karras_sigmas, c.use_exponential_sigmas, c.use_beta_sigmas].filter(Boolean).length > 1) {
    throw new SchedulerConfigError(
      `${name}: only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be set`,
    );
  }
  if (!['epsilon', 'sample', 'v_prediction'].includes(c.prediction_type)) {
    throw new SchedulerConfigError(
      `${name}: prediction_type "${c.prediction_type}" must be "epsilon", "sample" or "v_prediction"`,
    );
  }
  if (!Number.isInteger(c.solver_order) || c.solver_order < 1 || c.solver_order > 3) {
    throw new SchedulerConfigError(`${name}: solver_order must be 1, 2 or 3, got ${c.solver_order}`);
  }
}

/** The sigma family a config asks for, with its timesteps recovered by _sigma_to_t. */
export type SigmaKind = 'plain' | 'karras' | 'exponential' | 'lu';

/** Karras, else exponential, else plain sigmas (DPM-Solver multistep also knows Lu's). */
export function sigmaKindOf(c: { use_karras_sigmas: boolean; use_exponential_sigmas: boolean }): SigmaKind {
  return c.use_karras_sigmas ? 'karras' : c.use_exponential_sigmas ? 'exponential' : 'plain';
}

/** final_sigmas_type must be one diffusers knows. */
export function checkFinalSigmasType(name: string, finalSigmasType: string): void {
  if (finalSigmasType !== 'zero' && finalSigmasType !== 'sigma_min') {
    throw new SchedulerConfigError(`${name}: final_sigmas_type must be "zero" or "sigma_min"`);
  }
}

/**
 * The inference sigmas (float64, before the float32 cast) and float64 timesteps for `kind`:
 * "plain" interpolates the training sigmas at `timesteps`; the others replace both.
 * `sigmaMin` / `sigmaMax` default to the training schedule's ends, as diffusers does when the
 * config has no such keys.
 */
export function vpSigmas(
  kind: SigmaKind,
  timesteps: number[],
  n: number,
  train: TrainSchedule,
  sigmaMin?: number | null,
  sigmaMax?: number | null,
): { sigmas: number[]; timesteps: number[] } {
  const s = train.sigmas;
  if (kind === 'plain') return { sigmas: interpolateSigmas(timesteps, s), timesteps };
  const lo = sigmaMin ?? s[0];
  const hi = sigmaMax ?? s[s.length - 1];
  let sigmas: number[];
  if (kind === 'karras') sigmas = karrasSigmas(lo, hi, n);
  else if (kind === 'exponential') sigmas = exponentialSigmas(lo, hi, n);
  else {
    // Lu et al. (2022): uniform in log-SNR, i.e. linear in log sigma (rho = 1), from the top down
    const top = train.logSigmas[s.length - 1];
    const bottom = train.logSigmas[0];
    sigmas = npLinspace(0, 1, n).map((r) => Math.exp(top + r * (bottom - top)));
  }
  return { sigmas, timesteps: sigmas.map((sigma) => sigmaToT(sigma, train.logSigmas)) };
}

/**
 * How many of the noisiest training steps DPM-Solver's lambda_min_clipped cuts off: diffusers'
 * searchsorted of the bound in the flipped (increasing) float32 λ = log α − log σ.
 */
export function clippedStepCount(train: TrainSchedule, lambdaMinClipped: number): number {
  const ac = train.alphasCumprod;
  let count = 0;
  for (let i = ac.length - 1; i >= 0; i--) {
    const lambda = f32(f32(Math.log(f32(Math.sqrt(ac[i])))) - f32(Math.log(f32(Math.sqrt(f32(1 - ac[i]))))));
    if (!(lambda < lambdaMinClipped)) break;
    count++;
  }
  return count;
}

/** torch's cast of float64 timesteps to int64 (truncation toward zero). */
export function toInt64(t: number): number {
  return Math.trunc(t);
}

/** α_t and σ_t of a VP sigma (σ = σ_t / α_t), in float32: α = 1/√(σ²+1), σ_t = σ·α. */
export function alphaSigma(sigma: number): { alpha: number; sigma: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return { alpha, sigma: f32(sigma * alpha) };
}

/** λ = log α − log σ in float32. */
export function lambdaOf(a: { alpha: number; sigma: number }): number {
  return f32(f32(Math.log(a.alpha)) - f32(Math.log(a.sigma)));
}

/** Σ c_k·x_k element-wise, each product and each partial sum rounded to float32, left to right. */
export function linComb(coefs: readonly number[], xs: readonly Float32Array[]): Float32Array {
  const n = xs[0].length;
  const out = new Float32Array(n);
  const k = coefs.length;
  for (let i = 0; i < n; i++) {
    let acc = f32(coefs[0] * xs[0][i]);
    for (let j = 1; j < k; j++) acc = f32(acc + f32(coefs[j] * xs[j][i]));
    out[i] = acc;
  }
  return out;
}

/** (a − b)·c element-wise in float32. */
export function diffTimes(a: Float32Array, b: Float32Array, c: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32(a[i] - b[i]) * c;
  return out;
}

/** (a − b)/c element-wise in float32 (torch divides; a reciprocal would round differently). */
export function diffOver(a: Float32Array, b: Float32Array, c: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32(a[i] - b[i]) / c;
  return out;
}

/**
 * The model output as x0 (data) prediction, float32: epsilon (x − σ·ε)/α, v_prediction α·x − σ·v,
 * sample as is.
 */
export function toDataPrediction(
  predictionType: string,
  modelOutput: Float32Array,
  sample: Float32Array,
  a: { alpha: number; sigma: number },
): Float32Array {
  const out = new Float32Array(sample.length);
  if (predictionType === 'epsilon') {
    for (let i = 0; i < out.length; i++) out[i] = f32(sample[i] - f32(a.sigma * modelOutput[i])) / a.alpha;
  } else if (predictionType === 'v_prediction') {
    for (let i = 0; i < out.length; i++) out[i] = f32(a.alpha * sample[i]) - f32(a.sigma * modelOutput[i]);
  } else {
    out.set(modelOutput);
  }
  return out;
}

/**
 * The model output as noise prediction, float32: epsilon as is, sample (x − α·x0)/σ,
 * v_prediction α·v + σ·x.
 */
export function toNoisePrediction(
  predictionType: string,
  modelOutput: Float32Array,
  sample: Float32Array,
  a: { alpha: number; sigma: number },
): Float32Array {
  const out = new Float32Array(sample.length);
  if (predictionType === 'sample') {
    for (let i = 0; i < out.length; i++) out[i] = f32(sample[i] - f32(a.alpha * modelOutput[i])) / a.sigma;
  } else if (predictionType === 'v_prediction') {
    for (let i = 0; i < out.length; i++) out[i] = f32(a.alpha * modelOutput[i]) + f32(a.sigma * sample[i]);
  } else {
    out.set(modelOutput);
  }
  return out;
}

/** The data prediction (DPM-Solver++, UniPC's predict_x0) or else the noise prediction of a model output. */
export function convertModelOutput(
  toData: boolean,
  predictionType: string,
  modelOutput: Float32Array,
  sample: Float32Array,
  a: { alpha: number; sigma: number },
): Float32Array {
  return toData
    ? toDataPrediction(predictionType, modelOutput, sample, a)
    : toNoisePrediction(predictionType, modelOutput, sample, a);
}

/**
 * The bookkeeping all four share: schedule, step index and begin index, past model outputs,
 * add_noise, and the identity input scaling. Subclasses call setSchedule in setTimesteps and
 * finishStep at the end of step.
 */
export abstract class VpSolverBase implements Scheduler {
  abstract readonly name: string;
  abstract readonly config: Readonly<SchedulerConfig>;
  readonly order = 1;
  readonly initNoiseSigma = 1;
  timesteps: number[];
  sigmas: number[];
  protected readonly train: TrainSchedule;
  /** The last solver_order converted model outputs, oldest first (null until there are enough). */
  protected modelOutputs: (Float32Array | null)[] = [];
  // a timestep missing from the schedule falls back to the last index, as diffusers' solvers do
  private readonly idx = new StepIndex('last');
  /** Whether setTimesteps has run (diffusers refuses to step before it). */
  private ready = false;

  constructor(config: BetaConfig) {
    this.train = trainSchedule(config);
    // before set_timesteps diffusers holds the whole training range, as float32 values
    this.timesteps = descendingTimesteps(config.num_train_timesteps);
    this.sigmas = Array.from(this.train.sigmas);
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult;

  setBeginIndex(i: number): void {
    this.idx.begin = i;
  }

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    const a = alphaSigma(this.sigmas[this.idx.forNoise(this.timesteps, t)]);
    return linComb([a.alpha, a.sigma], [original, noise]);
  }

  /**
   * Installs new timesteps (cast to int64) and sigmas (plus the final one, all float32) and resets
   * the per-run state: outputs, step index and begin index (diffusers clears that too).
   */
  protected setSchedule(timesteps: number[], sigmas: number[], finalSigma: number, solverOrder: number): void {
    this.timesteps = timesteps.map(toInt64);
    this.sigmas = withFinalSigma(sigmas, finalSigma);
    this.modelOutputs = new Array<Float32Array | null>(solverOrder).fill(null);
    this.idx.reset();
    this.ready = true;
  }

  /** The current step index, set from the begin index or from t on the first step. */
  protected currentIndex(t: number): number {
    if (!this.ready) {
      throw new SchedulerConfigError(`${this.name}: call setTimesteps before step`);
    }
    return this.idx.current(this.timesteps, t);
  }

  protected finishStep(idx: number): void {
    this.idx.index = idx + 1;
  }

  /** Appends this step's converted output, dropping the oldest. */
  protected pushOutput(m: Float32Array): void {
    this.modelOutputs.shift();
    this.modelOutputs.push(m);
  }

  /** The k-th most recent converted output (1 = this step's). */
  protected output(k: number): Float32Array {
    const m = this.modelOutputs[this.modelOutputs.length - k];
    if (!m) throw new Error(`${this.name}: missing a past model output`);
    return m;
  }
}

/** The rng an SDE variant needs, or a clear error when the caller gave none. */
export function requireRng(name: string, rng: SchedulerRng | undefined): SchedulerRng {
  if (!rng) throw new SchedulerConfigError(`${name} with an SDE algorithm_type needs a random generator in step()`);
  return rng;
}

/** Float32 sigma list of set_timesteps: the inference sigmas plus the final one. */
export function withFinalSigma(sigmas: number[], last: number): number[] {
  return [...sigmas, last].map(f32);
}
