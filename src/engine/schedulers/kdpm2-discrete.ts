/**
 * diffusers' KDPM2DiscreteScheduler (k-diffusion's DPM-Solver-2 / "DPM2"): order 2; each step
 * evaluates the model at σ and at the geometric midpoint of σ and the next σ, so N steps call
 * the model 2N − 1 times.
 */
import {
  LINEAR_BETA_DEFAULTS,
  SIGMA_OPTION_DEFAULTS,
  SchedulerConfigError,
  f32,
  predictX0FromSigma,
  resolveConfig,
  scaleBySigma,
  sigmaToT,
} from './common.ts';
import { SigmaSchedulerBase } from './sigma-base.ts';
import type { SchedulerConfig, StepResult } from './types.ts';

/** The defaults of both KDPM2 schedulers. */
export const KDPM2_DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  ...SIGMA_OPTION_DEFAULTS,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};
export type KDPM2DiscreteConfig = typeof KDPM2_DEFAULTS;

/** exp(torch.lerp(log a, log b, 0.5)) in float32: the geometric midpoint, 0 when b is 0. */
export function logMidpoint(a: number, b: number): number {
  const la = f32(Math.log(a));
  const lb = f32(Math.log(b));
  // torch.lerp with weight 0.5 takes the `end - (end - self) * (1 - w)` branch
  return f32(Math.exp(f32(lb - f32(f32(lb - la) * 0.5))));
}

/** [a0, a1, a1, ..., aN, aN, aN]: diffusers' cat([a[:1], a[1:].repeat_interleave(2), a[-1:]]). */
export function expandPairs(a: readonly number[]): number[] {
  const out = [a[0]];
  for (let i = 1; i < a.length; i++) out.push(a[i], a[i]);
  out.push(a[a.length - 1]);
  return out;
}

/**
 * What KDPM2 and KDPM2 ancestral share: config, the sigma schedule before interleaving, the
 * midpoint sigmas and the sample saved between the two half-steps. N steps call the model 2N − 1 times.
 */
export abstract class KDPM2Base extends SigmaSchedulerBase {
  readonly config: KDPM2DiscreteConfig;
  readonly order = 2;
  /** Midpoint sigmas, laid out like `sigmas`. */
  sigmasInterpol: number[] = [];
  /** The sample of the first half-step, set until the second one. */
  protected saved: Float32Array | null = null;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(KDPM2_DEFAULTS, config);
    super(c);
    this.config = c;
  }

  /** The spaced sigmas and their timesteps, before interleaving. */
  protected baseSchedule(steps: number): { timesteps: number[]; sigmas: number[]; logSigmas: Float64Array } {
    if (this.config.prediction_type === 'sample') {
      throw new SchedulerConfigError('KDPM2 schedulers do not support prediction_type "sample"');
    }
    const schedule = this.spacedSchedule(steps, { roundKarrasTimesteps: true });
    this.saved = null;
    return schedule;
  }

  /** The fractional training timesteps of the midpoint sigmas (float64 for Karras sigmas, else float32). */
  protected midpointTimesteps(interpol: readonly number[], logSigmas: Float64Array): number[] {
    return interpol.map((s) => {
      const t = sigmaToT(s, logSigmas, true);
      return this.config.use_karras_sigmas ? t : f32(t);
    });
  }
}

export class KDPM2DiscreteScheduler extends KDPM2Base {
  readonly name = 'KDPM2DiscreteScheduler';

  constructor(config: SchedulerConfig = {}) {
    super(config);
    this.setTimesteps(this.config.num_train_timesteps);
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas, logSigmas } = this.baseSchedule(numInferenceSteps);
    const n = sigmas.length;
    // midpoint of σ_i and σ_{i−1} (torch.roll(1): σ_0 pairs with the final 0, which gives NaN, never used)
    const interpol = sigmas.map((s, i) => logMidpoint(s, sigmas[(i - 1 + n) % n]));
    const tInterpol = this.midpointTimesteps(interpol, logSigmas);
    this.sigmas = expandPairs(sigmas);
    this.sigmasInterpol = expandPairs(interpol);
    const ts = [timesteps[0]];
    for (let i = 1; i < timesteps.length; i++) ts.push(tInterpol[i], timesteps[i]);
    this.timesteps = ts;
  }

  override scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const i = this.idx.current(this.timesteps, t);
    return scaleBySigma(sample, this.saved === null ? this.sigmas[i] : this.sigmasInterpol[i]);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    const first = this.saved === null;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaInterpol = first ? this.sigmasInterpol[i + 1] : this.sigmasInterpol[i];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, first ? sigma : sigmaInterpol);
    const n = sample.length;
    const prev = new Float32Array(n);
    if (this.saved === null) {
      const dt = f32(sigmaInterpol - sigma);
      for (let k = 0; k < n; k++) prev[k] = sample[k] + f32(f32(f32(sample[k] - x0[k]) / sigma) * dt);
      this.saved = sample;
    } else {
      const dt = f32(sigmaNext - sigma);
      const base = this.saved;
      for (let k = 0; k < n; k++) prev[k] = base[k] + f32(f32(f32(sample[k] - x0[k]) / sigmaInterpol) * dt);
      this.saved = null;
    }
    this.idx.index = i + 1;
    return { prevSample: prev, predOriginalSample: x0 };
  }
}
