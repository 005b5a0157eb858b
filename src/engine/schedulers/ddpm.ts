/** diffusers' DDPMScheduler (Ho et al. 2020): ancestral sampling with the posterior variance. */
import { AlphaSchedulerBase, rejectThresholding } from './alpha-base.ts';
import { LINEAR_BETA_DEFAULTS, SchedulerConfigError, clipInPlace, f32, predictX0FromAlpha, resolveConfig } from './common.ts';
import { checkInferenceSteps, integerTimesteps } from './ddim.ts';
import type { SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  variance_type: 'fixed_small',
  clip_sample: true,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};
export type DDPMConfig = typeof DEFAULTS;

const VARIANCE_TYPES = ['fixed_small', 'fixed_small_log', 'fixed_large'];

export class DDPMScheduler extends AlphaSchedulerBase {
  readonly name = 'DDPMScheduler';
  readonly config: DDPMConfig;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    rejectThresholding('DDPMScheduler', c);
    if (!VARIANCE_TYPES.includes(c.variance_type)) {
      throw new SchedulerConfigError(
        `DDPMScheduler: variance_type "${c.variance_type}" is not supported (use ${VARIANCE_TYPES.join(', ')})`,
      );
    }
    super(c);
    this.config = c;
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    checkInferenceSteps(numInferenceSteps, c.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = integerTimesteps(c.timestep_spacing, c.num_train_timesteps, numInferenceSteps, c.steps_offset);
  }

  /** The next timestep of the schedule (−1 after the last); t − 1 before setTimesteps. */
  private previousTimestep(t: number): number {
    if (this.numInferenceSteps === null) return t - 1;
    const i = this.timesteps.indexOf(t);
    if (i < 0) throw new SchedulerConfigError(`timestep ${t} is not in the schedule`);
    return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1];
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    const c = this.config;
    const prevT = this.previousTimestep(t);
    const aT = this.alphasCumprod[t];
    const aPrev = this.alphaAt(prevT);
    const bT = f32(1 - aT);
    const bPrev = f32(1 - aPrev);
    const curAlpha = f32(aT / aPrev);
    const curBeta = f32(1 - curAlpha);
    const sqrtA = f32(Math.sqrt(aT));
    const sqrtB = f32(Math.sqrt(bT));
    const n = sample.length;
    const x0 = predictX0FromAlpha(c.prediction_type, modelOutput, sample, sqrtA, sqrtB);
    if (c.clip_sample) clipInPlace(x0, c.clip_sample_range);
    // eq. 7 of the DDPM paper: the posterior mean's coefficients
    const x0Coef = f32(f32(f32(Math.sqrt(aPrev)) * curBeta) / bT);
    const xtCoef = f32(f32(f32(Math.sqrt(curAlpha)) * bPrev) / bT);
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) prev[i] = f32(x0Coef * x0[i]) + f32(xtCoef * sample[i]);
    if (t > 0) {
      if (!rng) throw new SchedulerConfigError('DDPMScheduler needs a random source');
      const noise = rng.randn(n);
      const std = this.noiseScale(bT, bPrev, curBeta);
      for (let i = 0; i < n; i++) prev[i] = prev[i] + f32(std * noise[i]);
    }
    return { prevSample: prev, predOriginalSample: x0 };
  }

  /** The factor on the fresh noise for the configured variance_type (diffusers' _get_variance). */
  private noiseScale(bT: number, bPrev: number, curBeta: number): number {
    const variance = Math.max(f32(f32(bPrev / bT) * curBeta), f32(1e-20));
    switch (this.config.variance_type) {
      case 'fixed_small_log':
        // exp(0.5 * log v) is used as is, not square-rooted again
        return f32(Math.exp(f32(0.5 * f32(Math.log(variance)))));
      case 'fixed_large':
        return f32(Math.sqrt(curBeta));
      default:
        return f32(Math.sqrt(variance));
    }
  }
}
