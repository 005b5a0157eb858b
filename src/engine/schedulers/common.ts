/** Pieces every diffusers scheduler shares: beta schedules, from_config resolution, array math. */
import type { SchedulerConfig } from './types.ts';

/** Thrown for a bad scheduler name or config; the API layer turns it into an error response. */
export class SchedulerConfigError extends Error {
  override name = 'SchedulerConfigError';
}

/**
 * diffusers' from_config: values from the model's config for the keys this scheduler knows,
 * the scheduler's defaults for the rest. Unknown keys (e.g. "_class_name") are dropped.
 */
export function resolveConfig<T extends SchedulerConfig>(defaults: T, given: SchedulerConfig = {}): T {
  const out: SchedulerConfig = { ...defaults };
  for (const key of Object.keys(defaults)) {
    const v = given[key];
    if (v !== undefined && v !== null) out[key] = v;
    else if (v === null && defaults[key] === null) out[key] = null;
  }
  return out as T;
}

/** Float64 betas as diffusers computes them (torch float32 for linear/scaled_linear). */
export function makeBetas(config: {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas?: number[] | null;
}): Float64Array {
  const n = config.num_train_timesteps;
  if (config.trained_betas && config.trained_betas.length > 0) return Float64Array.from(config.trained_betas);
  const out = new Float64Array(n);
  switch (config.beta_schedule) {
    case 'linear':
      for (let i = 0; i < n; i++) out[i] = Math.fround(linspaceAt(config.beta_start, config.beta_end, n, i));
      return out;
    case 'scaled_linear': {
      const a = Math.sqrt(config.beta_start);
      const b = Math.sqrt(config.beta_end);
      for (let i = 0; i < n; i++) {
        const s = Math.fround(linspaceAt(a, b, n, i));
        out[i] = Math.fround(s * s);
      }
      return out;
    }
    case 'squaredcos_cap_v2': {
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
      for (let i = 0; i < n; i++) out[i] = Math.fround(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
      return out;
    }
    default:
      throw new SchedulerConfigError(`beta_schedule "${config.beta_schedule}" is not supported`);
  }
}

/** torch.linspace(start, end, n)[i], computed in float64. */
export function linspaceAt(start: number, end: number, n: number, i: number): number {
  if (n === 1) return start;
  const step = (end - start) / (n - 1);
  // torch fills the second half from the end so that the last value is exact
  return i < n / 2 ? start + step * i : end - step * (n - 1 - i);
}

export function linspace(start: number, end: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => linspaceAt(start, end, n, i));
}

/** cumprod(1 - betas), rounded to float32 at each step as torch does. */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc = Math.fround(acc * Math.fround(1 - betas[i]));
    out[i] = acc;
  }
  return out;
}

/** Karras et al. (2022) sigmas, as diffusers' _convert_to_karras (rho = 7). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return linspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** np.interp for increasing xp. */
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
  const t = (x - xp[lo]) / (xp[hi] - xp[lo]);
  return fp[lo] + t * (fp[hi] - fp[lo]);
}

/** out[i] = a * x[i] + b * y[i], the shape of almost every scheduler update. */
export function axpby(a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i] + b * y[i];
  return out;
}

export function scale(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * s;
  return out;
}
