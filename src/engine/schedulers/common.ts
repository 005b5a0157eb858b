/**
 * Pieces every diffusers scheduler shares: beta schedules, from_config resolution, numpy/torch
 * array constructors with their exact rounding, and float32 element-wise math.
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

/** Karras et al. (2022) sigmas, as diffusers' _convert_to_karras (rho = 7, numpy float64). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
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
 * diffusers' index_for_timestep: the position of t in the schedule, the second one when t occurs
 * twice (so that a schedule entered mid-way, e.g. by img2img, does not skip a sigma).
 */
export function indexForTimestep(timesteps: readonly number[], t: number): number {
  const hits: number[] = [];
  for (let i = 0; i < timesteps.length; i++) if (timesteps[i] === t) hits.push(i);
  if (hits.length === 0) throw new SchedulerConfigError(`timestep ${t} is not in the schedule`);
  return hits.length > 1 ? hits[1] : hits[0];
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
      return npArange(numTrain, 0, -numTrain / n).map((v) => npRound(v) - 1);
    default:
      throw new SchedulerConfigError(
        `timestep_spacing "${spacing}" is not supported (use "linspace", "leading" or "trailing")`,
      );
  }
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
  const index = Array.from(train, (_, i) => i);
  let sigmas: number[];
  const interpolation = o.interpolation ?? 'linear';
  if (interpolation === 'linear') {
    sigmas = timesteps.map((t) => interp(t, index, train));
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
    sigmas = o.useKarras
      ? karrasSigmas(sMin, sMax, o.steps)
      : npLinspace(Math.log(sMax), Math.log(sMin), o.steps).map(Math.exp);
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

/** The step-index bookkeeping every sigma scheduler shares (diffusers' _init_step_index). */
export class StepIndex {
  index: number | null = null;
  begin: number | null = null;

  reset(): void {
    this.index = null;
    this.begin = null;
  }

  /** The current index, initialised from the begin index or from t on first use. */
  current(timesteps: readonly number[], t: number): number {
    if (this.index === null) this.index = this.begin ?? indexForTimestep(timesteps, t);
    return this.index;
  }

  /** add_noise's index: t's own position unless a begin index was set. */
  forNoise(timesteps: readonly number[], t: number): number {
    if (this.begin === null) return indexForTimestep(timesteps, t);
    return this.index ?? this.begin;
  }
}
