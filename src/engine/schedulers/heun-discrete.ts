/**
 * diffusers' HeunDiscreteScheduler (Karras et al. 2022, Algorithm 1): order 2, so N steps call
 * the model 2N − 1 times; timesteps after the first appear twice (predictor, then corrector).
 */
import {
  LINEAR_BETA_DEFAULTS,
  SIGMA_OPTION_DEFAULTS,
  SchedulerConfigError,
  clipInPlace,
  f32,
  predictX0FromSigma,
  resolveConfig,
} from './common.ts';
import { SigmaSchedulerBase } from './sigma-base.ts';
import type { SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  prediction_type: 'epsilon',
  ...SIGMA_OPTION_DEFAULTS,
  clip_sample: false,
  clip_sample_range: 1.0,
  timestep_spacing: 'linspace',
  steps_offset: 0,
};
export type HeunDiscreteConfig = typeof DEFAULTS;

/** [a0, a1, a1, a2, a2, ...]: every element after the first twice, as torch.repeat_interleave(2). */
export function repeatAfterFirst(a: readonly number[]): number[] {
  const out = [a[0]];
  for (let i = 1; i < a.length; i++) out.push(a[i], a[i]);
  return out;
}

export class HeunDiscreteScheduler extends SigmaSchedulerBase {
  readonly name = 'HeunDiscreteScheduler';
  readonly config: HeunDiscreteConfig;
  readonly order = 2;
  /** Set between the predictor and the corrector call. */
  private pending: { derivative: Float32Array; dt: number; sample: Float32Array } | null = null;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    if (c.beta_schedule === 'exp') throw new SchedulerConfigError('beta_schedule "exp" is not supported');
    super(c);
    this.config = c;
    this.setTimesteps(c.num_train_timesteps);
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps);
    // σ0, σ1, σ1, ..., σ_{N−1}, σ_{N−1}, 0 and t0, t1, t1, ..., t_{N−1}, t_{N−1}
    this.sigmas = [...repeatAfterFirst(sigmas.slice(0, -1)), 0];
    this.timesteps = repeatAfterFirst(timesteps);
    this.pending = null;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    const first = this.pending === null;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const sigmaInput = first ? sigma : sigmaNext;
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigmaInput);
    if (this.config.clip_sample) clipInPlace(x0, this.config.clip_sample_range);
    const n = sample.length;
    const derivative = new Float32Array(n);
    let dt: number;
    let base: Float32Array;
    if (this.pending === null) {
      for (let k = 0; k < n; k++) derivative[k] = f32(sample[k] - x0[k]) / sigma;
      dt = f32(sigmaNext - sigma);
      base = sample;
      this.pending = { derivative, dt, sample };
    } else {
      const p = this.pending;
      for (let k = 0; k < n; k++) derivative[k] = f32(p.derivative[k] + f32(f32(sample[k] - x0[k]) / sigmaNext)) / 2;
      dt = p.dt;
      base = p.sample;
      this.pending = null;
    }
    const prev = new Float32Array(n);
    for (let k = 0; k < n; k++) prev[k] = base[k] + f32(derivative[k] * dt);
    this.idx.index = i + 1;
    return { prevSample: prev, predOriginalSample: x0 };
  }
}
