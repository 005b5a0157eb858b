/**
 * Pieces every diffusers scheduler shares: from_config resolution and shared defaults, beta and
 * training schedules, timestep spacing, sigma schedules (Karras, exponential, interpolated), the
 * step-index bookkeeping, x0 predictions, add_noise, numpy/torch array constructors with their
 * exact rounding, and float32 element-wise math. The base classes build on it: alpha-base.ts
 * (DDPM family), sigma-base.ts (k-diffusion family), multistep-common.ts (multistep solvers).
 *
 * diffusers keeps betas, alphas_cumprod and sigmas as float32 tensors and runs its updates in
 * float32. Values here are float64 numbers that hold float32 values (rounded with `f32`) wherever
 * torch would hold float32, so that schedules match diffusers to the bit and full loops to ~1e-7.
 */
import type { SchedulerConfig } from './types.ts';

/** Thrown for a bad scheduler name or config; the API layer turns it into an error response. */
export class SchedulerConfigError extends Error {
  override name = 'SchedulerConfigError';
}

/** Round to float32, as every torch float32 op does. */
export const f32 = Math.fround;

/**
 * diffusers' from_config: values from the model's config for the keys this scheduler knows,
 * the scheduler's defaults for the rest. Unknown keys (e.g. "_class_name") are dropped.
 */
export function resolveConfig<T extends SchedulerConfig>(defaults: T, given: SchedulerConfig = {}): T {
  const out: SchedulerConfig = { ...defaults };
  for (const key of Object.keys(defaults)) {
    const v = given[key];
    if (v !== undefined && v !== null) out[key] = coerceLike(defaults[key], v, key);
    else if (v === null && defaults[key] === null) out[key] = null;
  }
  return out as T;
}

/** Request overrides arrive as the API spells them ("yes", "30"); give them the default's type. */
function coerceLike(def: unknown, v: unknown, key: string): unknown {
  if (typeof def === 'boolean' && typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'yes' || s === 'true' || s === '1') return true;
    if (s === 'no' || s === 'false' || s === '0' || s === '') return false;
    throw new SchedulerConfigError(`${key} must be "yes" or "no", got "${v}"`);
  }
  if (typeof def === 'number' && typeof v === 'string') {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new SchedulerConfigError(`${key} must be a number, got "${v}"`);
    return n;
  }
  return v;
}

/** The config keys that build the beta schedule, shared by every DDPM-family scheduler. */
export interface BetaConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas?: number[] | null;
  rescale_betas_zero_snr?: boolean;
}

/** The beta keys of most diffusers schedulers' defaults (DDPM's linear schedule). */
export const LINEAR_BETA_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
};

/** The sigma-family options of every scheduler that offers them, all off by default. */
export const SIGMA_OPTION_DEFAULTS = {
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
};

/** Betas as diffusers computes them (float32 values). */
export function makeBetas(config: BetaConfig): Float64Array {
  const n = config.num_train_timesteps;
  let betas: Float64Array;
  if (config.trained_betas && config.trained_betas.length > 0) {
    betas = Float64Array.from(config.trained_betas, (b) => f32(b));
  } else {
    switch (config.beta_schedule) {
      case 'linear':
        betas = torchLinspaceF32(config.beta_start, config.beta_end, n);
        break;
      case 'scaled_linear':
        betas = torchLinspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n).map((s) => f32(s * s));
        break;
      case 'squaredcos_cap_v2':
        betas = betasForAlphaBar(n);
        break;
      default:
        throw new SchedulerConfigError(
          `beta_schedule "${config.beta_schedule}" is not supported (use linear, scaled_linear or squaredcos_cap_v2)`,
        );
    }
  }
  return config.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** diffusers' betas_for_alpha_bar with the cosine transform (Python floats, then float32). */
export function betasForAlphaBar(n: number, maxBeta = 0.999): Float64Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f32(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta));
  return out;
}

/** diffusers' rescale_zero_terminal_snr (Lin et al. 2023), float32 as torch runs it. */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const sqrtAc = alphasCumprod(betas).map((a) => f32(Math.sqrt(a)));
  const first = sqrtAc[0];
  const last = sqrtAc[n - 1];
  const factor = f32(first / f32(first - last));
  const bar = sqrtAc.map((s) => {
    const v = f32(f32(s - last) * factor);
    return f32(v * v);
  });
  const out = new Float64Array(n);
  out[0] = f32(1 - bar[0]);
  for (let i = 1; i < n; i++) out[i] = f32(1 - f32(bar[i] / bar[i - 1]));
  return out;
}

/**
 * torch.linspace(start, end, n, dtype=float32) as current torch computes it on the CPU: float32
 * endpoints and step, the first half counted up from start and the second half down from end,
 * each value one fused multiply-add (a single rounding).
 */
export function torchLinspaceF32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32((e - s) / (n - 1));
  const halfway = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < halfway ? f32(s + step * i) : f32(e - step * (n - 1 - i));
  return out;
}

/** np.linspace(start, stop, n) in float64: i * step + start, and the last value exactly stop. */
export function npLinspace(start: number, stop: number, n: number): number[] {
  if (n <= 0) return [];
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  const out = Array.from({ length: n }, (_, i) => i * step + start);
  out[n - 1] = stop;
  return out;
}

/** np.arange(start, stop, step) for float64: length from ceil, values start + i * delta. */
export function npArange(start: number, stop: number, step: number): number[] {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  if (len === 0) return [];
  // numpy's fill takes delta from the first two stored values, not from `step` itself
  const delta = start + step - start;
  return Array.from({ length: len }, (_, i) => (i === 0 ? start : start + i * delta));
}

/** np.round: half to even. */
export function npRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** cumprod(1 - betas) in float32; torch's CPU cumprod accumulates in float64 and stores float32. */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]);
    out[i] = f32(acc);
  }
  return out;
}

/** ((1 - ᾱ) / ᾱ) ** 0.5 per training step, in float32 as torch computes it. */
export function trainingSigmas(alphasCumprodF32: Float64Array): Float64Array {
  return alphasCumprodF32.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** The training schedule: ᾱ, the sigmas √((1-ᾱ)/ᾱ) and their logs, all float32 values. */
export interface TrainSchedule {
  alphasCumprod: Float64Array;
  sigmas: Float64Array;
  /** np.log of the float32 sigmas, float32 as numpy keeps it. */
  logSigmas: Float64Array;
}

export function trainSchedule(config: BetaConfig): TrainSchedule {
  const ac = alphasCumprod(makeBetas(config));
  // a zero terminal SNR would make the last sigma infinite; diffusers clamps ᾱ_T to 2^-24
  if (config.rescale_betas_zero_snr) ac[ac.length - 1] = 2 ** -24;
  const sigmas = trainingSigmas(ac);
  return { alphasCumprod: ac, sigmas, logSigmas: sigmas.map((s) => f32(Math.log(s))) };
}

/** The whole training range, descending: the timesteps diffusers holds before set_timesteps. */
export function descendingTimesteps(numTrain: number): number[] {
  return Array.from({ length: numTrain }, (_, i) => numTrain - 1 - i);
}

/** Karras et al. (2022) sigmas, as diffusers' _convert_to_karras (rho = 7, numpy float64). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** diffusers' _convert_to_exponential: evenly spaced in log sigma, numpy float64. */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  return npLinspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/** np.interp(timesteps, arange(len(train)), train): the training sigmas at fractional timesteps. */
export function interpolateSigmas(timesteps: readonly number[], trainSigmas: Float64Array): number[] {
  const index = Array.from(trainSigmas, (_, i) => i);
  return timesteps.map((t) => interp(t, index, trainSigmas));
}

/**
 * diffusers' _sigma_to_t: the fractional training timestep whose log-sigma matches, by linear
 * interpolation in log space. `logSigmas` are log(training sigmas) as float32, increasing with t.
 * numpy computes in float64 for a float64 sigma (Karras sigmas) and in float32 for a float32
 * one (KDPM2's interpolated sigmas, taken from a torch tensor); `float32` picks the latter.
 */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>, float32 = false): number {
  const r = float32 ? f32 : (x: number) => x;
  const logSigma = r(Math.log(Math.max(sigma, 1e-10)));
  const n = logSigmas.length;
  // the last index whose log-sigma is <= logSigma (0 if none, or for NaN), at most n - 2
  let low = 0;
  for (let i = 0; i < n; i++) if (logSigma >= logSigmas[i]) low = i;
  low = Math.min(low, n - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  const w = Math.min(Math.max(r(r(lo - logSigma) / f32(lo - hi)), 0), 1);
  return r(1 - w) * low + w * (low + 1);
}

/** np.interp for increasing xp, with numpy's own formula (slope * (x - xp[j]) + fp[j]). */
export function interp(x: number, xp: ArrayLike<number>, fp: ArrayLike<number>): number {
  const n = xp.length;
  if (x <= xp[0]) return fp[0];
  if (x >= xp[n - 1]) return fp[n - 1];
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xp[mid] <= x) lo = mid;
    else hi = mid;
  }
  if (xp[lo] === x) return fp[lo];
  const slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo]);
  return slope * (x - xp[lo]) + fp[lo];
}

/**
 * What index_for_timestep does with a timestep that is not in the schedule: the k-diffusion
 * schedulers fail ("throw"), the multistep solvers take the last index ("last").
 */
export type MissingTimestep = 'throw' | 'last';

/**
 * diffusers' index_for_timestep: the position of t in the schedule, the second one when t occurs
 * twice (so that a schedule entered mid-way, e.g. by img2img, does not skip a sigma).
 */
export function indexForTimestep(timesteps: readonly number[], t: number, missing: MissingTimestep = 'throw'): number {
  let first = -1;
  for (let i = 0; i < timesteps.length; i++) {
    if (timesteps[i] !== t) continue;
    if (first >= 0) return i;
    first = i;
  }
  if (first >= 0) return first;
  if (missing === 'last') return timesteps.length - 1;
  throw new SchedulerConfigError(`timestep ${t} is not in the schedule`);
}

/** out[i] = a * x[i] + b * y[i], each product and the sum rounded to float32 as torch does. */
export function axpby(a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32(a * x[i]) + f32(b * y[i]);
  return out;
}

/** x * s in float32. */
export function scale(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * s;
  return out;
}

/** x / s in float32 (torch divides; multiplying by 1/s would round differently). */
export function divide(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / s;
  return out;
}

export function requirePositiveInt(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new SchedulerConfigError(`${what} must be a positive integer, got ${n}`);
}

/**
 * The training timesteps diffusers' set_timesteps picks for `timestep_spacing`, descending, in
 * float64: "linspace" unrounded (each scheduler rounds or casts it its own way), "leading"
 * rounded plus steps_offset, "trailing" rounded minus one.
 */
export function spacedTimesteps(spacing: string, numTrain: number, n: number, stepsOffset: number): number[] {
  switch (spacing) {
    case 'linspace':
      return npLinspace(0, numTrain - 1, n).reverse();
    case 'leading': {
      const ratio = Math.floor(numTrain / n);
      return Array.from({ length: n }, (_, i) => npRound(i * ratio) + stepsOffset).reverse();
    }
    case 'trailing':
      return trailingTimesteps(numTrain, n);
    default:
      throw unsupportedSpacing(spacing);
  }
}

/**
 * The descending training timesteps of the multistep solvers' set_timesteps (DPM-Solver, UniPC,
 * DEIS), float64 before any cast. Unlike the DDIM family, "linspace" takes N + 1 rounded points
 * and "leading" divides by N + 1. `last` is DPM-Solver's clipped end of the schedule
 * (num_train_timesteps when nothing is clipped).
 */
export function vpSpacedTimesteps(
  spacing: string,
  n: number,
  numTrain: number,
  stepsOffset: number,
  last = numTrain,
): number[] {
  switch (spacing) {
    case 'linspace':
      return npLinspace(0, last - 1, n + 1).map(npRound).reverse().slice(0, n);
    case 'leading': {
      const ratio = Math.floor(last / (n + 1));
      return Array.from({ length: n }, (_, i) => (n - i) * ratio + stepsOffset);
    }
    case 'trailing':
      return trailingTimesteps(numTrain, n, last);
    default:
      throw unsupportedSpacing(spacing);
  }
}

/** "trailing": round(arange(last, 0, -T/N)) − 1, the same in every scheduler. */
function trailingTimesteps(numTrain: number, n: number, last = numTrain): number[] {
  return npArange(last, 0, -numTrain / n).map((v) => npRound(v) - 1);
}

function unsupportedSpacing(spacing: string): SchedulerConfigError {
  return new SchedulerConfigError(
    `timestep_spacing "${spacing}" is not supported (use "linspace", "leading" or "trailing")`,
  );
}

/** Options of the k-diffusion family's set_timesteps (Euler, Heun, LMS, KDPM2 ...). */
export interface SigmaScheduleOptions {
  spacing: string;
  numTrain: number;
  steps: number;
  stepsOffset: number;
  /** float32 training sigmas, increasing with the training timestep. */
  trainSigmas: Float64Array;
  useKarras?: boolean;
  useExponential?: boolean;
  useBeta?: boolean;
  /** Euler's config.sigma_min / sigma_max; the other schedulers take them from the schedule. */
  sigmaMin?: number | null;
  sigmaMax?: number | null;
  interpolation?: string;
  /** Euler's final_sigmas_type: "zero" (everyone else) or "sigma_min". */
  finalSigma?: string;
  /** KDPM2 rounds the timesteps it recovers from Karras sigmas (and keeps them float64). */
  roundKarrasTimesteps?: boolean;
}

/**
 * The shared body of the k-diffusion schedulers' set_timesteps: spaced timesteps (float32),
 * sigmas interpolated at them (or Karras / exponential sigmas with their timesteps recovered by
 * _sigma_to_t), plus the final sigma; every value float32 as diffusers stores it.
 */
export function sigmaSchedule(o: SigmaScheduleOptions): { timesteps: number[]; sigmas: number[]; logSigmas: Float64Array } {
  let timesteps = spacedTimesteps(o.spacing, o.numTrain, o.steps, o.stepsOffset).map(f32);
  const train = o.trainSigmas;
  // np.log of a float32 array stays float32
  const logSigmas = train.map((s) => f32(Math.log(s)));
  let sigmas: number[];
  const interpolation = o.interpolation ?? 'linear';
  if (interpolation === 'linear') {
    sigmas = interpolateSigmas(timesteps, train);
  } else if (interpolation === 'log_linear') {
    // torch.linspace(log σ_max, log σ_min, steps + 1).exp(), all float32: one sigma more than timesteps, as diffusers
    sigmas = Array.from(torchLinspaceF32(logSigmas[train.length - 1], logSigmas[0], o.steps + 1), (v) => f32(Math.exp(v)));
  } else {
    throw new SchedulerConfigError(`interpolation_type "${interpolation}" is not supported (use "linear" or "log_linear")`);
  }
  const chosen = [o.useKarras, o.useExponential, o.useBeta].filter(Boolean).length;
  if (chosen > 1) {
    throw new SchedulerConfigError('only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be set');
  }
  if (o.useBeta) throw new SchedulerConfigError('use_beta_sigmas is not supported; use use_karras_sigmas instead');
  if (o.useKarras || o.useExponential) {
    const sMin = o.sigmaMin ?? sigmas[sigmas.length - 1];
    const sMax = o.sigmaMax ?? sigmas[0];
    sigmas = o.useKarras ? karrasSigmas(sMin, sMax, o.steps) : exponentialSigmas(sMin, sMax, o.steps);
    timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
    timesteps = o.useKarras && o.roundKarrasTimesteps ? timesteps.map(npRound) : timesteps.map(f32);
  }
  const finalType = o.finalSigma ?? 'zero';
  if (finalType !== 'zero' && finalType !== 'sigma_min') {
    throw new SchedulerConfigError(`final_sigmas_type must be "zero" or "sigma_min", got "${finalType}"`);
  }
  const last = finalType === 'zero' ? 0 : train[0];
  return { timesteps, sigmas: [...sigmas, last].map(f32), logSigmas };
}

/** init_noise_sigma of the sigma schedulers: σ_max, or sqrt(σ_max² + 1) for "leading" spacing. */
export function initNoiseSigmaFor(spacing: string, sigmas: readonly number[]): number {
  let max = -Infinity;
  for (const s of sigmas) if (s > max) max = s;
  return spacing === 'linspace' || spacing === 'trailing' ? max : f32(Math.sqrt(f32(f32(max * max) + 1)));
}

/** x / sqrt(σ² + 1) in float32, the input scaling of every k-diffusion scheduler. */
export function scaleBySigma(sample: Float32Array, sigma: number): Float32Array {
  return divide(sample, f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
}

/**
 * σ_up and σ_down of an ancestral step from σ to σ_next (k-diffusion's get_ancestral_step, eta 1),
 * in float32: σ_up = √(σ_next²·(σ² − σ_next²)/σ²), σ_down = √(σ_next² − σ_up²).
 */
export function ancestralSigmas(sigma: number, sigmaNext: number): { up: number; down: number } {
  const from2 = f32(sigma * sigma);
  const to2 = f32(sigmaNext * sigmaNext);
  const up = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
  return { up, down: f32(Math.sqrt(f32(to2 - f32(up * up)))) };
}

/** original + noise · σ in float32, the sigma schedulers' add_noise. */
export function addSigmaNoise(original: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = original[i] + f32(noise[i] * sigma);
  return out;
}

/**
 * The model's x0 prediction at noise level σ, for the k-diffusion schedulers, in float32.
 * epsilon: x − σ·ε; v_prediction: v·(−σ/√(σ²+1)) + x/(σ²+1); sample: the output itself.
 */
export function predictX0FromSigma(
  predictionType: string,
  modelOutput: Float32Array,
  sample: Float32Array,
  sigma: number,
): Float32Array {
  const out = new Float32Array(sample.length);
  switch (predictionType) {
    case 'epsilon':
      for (let i = 0; i < out.length; i++) out[i] = sample[i] - f32(sigma * modelOutput[i]);
      return out;
    case 'v_prediction': {
      const s2p1 = f32(f32(sigma * sigma) + 1);
      const c = f32(-sigma / f32(Math.sqrt(s2p1)));
      for (let i = 0; i < out.length; i++) out[i] = f32(modelOutput[i] * c) + f32(sample[i] / s2p1);
      return out;
    }
    case 'sample':
    case 'original_sample':
      out.set(modelOutput);
      return out;
    default:
      throw new SchedulerConfigError(
        `prediction_type "${predictionType}" is not supported (use "epsilon", "v_prediction" or "sample")`,
      );
  }
}

/**
 * The step-index bookkeeping of every scheduler that keeps one (diffusers' _init_step_index,
 * _step_index and _begin_index).
 */
export class StepIndex {
  index: number | null = null;
  begin: number | null = null;

  constructor(private readonly missing: MissingTimestep = 'throw') {}

  reset(): void {
    this.index = null;
    this.begin = null;
  }

  /** The current index, initialised from the begin index or from t on first use. */
  current(timesteps: readonly number[], t: number): number {
    if (this.index === null) this.index = this.begin ?? indexForTimestep(timesteps, t, this.missing);
    return this.index;
  }

  /** add_noise's index: t's own position unless a begin index was set. */
  forNoise(timesteps: readonly number[], t: number): number {
    if (this.begin === null) return indexForTimestep(timesteps, t, this.missing);
    return this.index ?? this.begin;
  }
}

/** √ᾱ · x0 + √(1 − ᾱ) · ε in float32: the DDPM family's forward process at ᾱ. */
export function noiseToAlpha(alphaCumprod: number, original: Float32Array, noise: Float32Array): Float32Array {
  const sa = f32(Math.sqrt(alphaCumprod));
  const sb = f32(Math.sqrt(f32(1 - alphaCumprod)));
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = f32(sa * original[i]) + f32(sb * noise[i]);
  return out;
}

/** add_noise of the DDPM family (DDPM, DDIM, PNDM, LCM): noiseToAlpha at ᾱ_t. */
export function addNoiseAlpha(
  alphasCumprodF32: Float64Array,
  original: Float32Array,
  noise: Float32Array,
  t: number,
): Float32Array {
  const a = alphasCumprodF32[t];
  if (a === undefined) throw new SchedulerConfigError(`timestep ${t} is outside the training schedule`);
  return noiseToAlpha(a, original, noise);
}

/**
 * The DDPM family's x0 prediction at ᾱ_t, in float32, from √ᾱ_t and √(1 − ᾱ_t):
 * epsilon (x − √(1−ᾱ)·ε)/√ᾱ, v_prediction √ᾱ·x − √(1−ᾱ)·v, sample the output itself.
 */
export function predictX0FromAlpha(
  predictionType: string,
  modelOutput: Float32Array,
  sample: Float32Array,
  sqrtA: number,
  sqrtB: number,
): Float32Array {
  const n = sample.length;
  const x0 = new Float32Array(n);
  switch (predictionType) {
    case 'epsilon':
      for (let i = 0; i < n; i++) x0[i] = f32(sample[i] - f32(sqrtB * modelOutput[i])) / sqrtA;
      return x0;
    case 'sample':
      x0.set(modelOutput);
      return x0;
    case 'v_prediction':
      for (let i = 0; i < n; i++) x0[i] = f32(sqrtA * sample[i]) - f32(sqrtB * modelOutput[i]);
      return x0;
    default:
      throw new SchedulerConfigError(
        `prediction_type "${predictionType}" is not supported (use "epsilon", "sample" or "v_prediction")`,
      );
  }
}

/** clip_sample: x clamped to [−range, range] in place. */
export function clipInPlace(x: Float32Array, range: number): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(Math.max(x[i], -range), range);
}
