/**
 * diffusers' LCMScheduler (Luo et al. 2023): one consistency-model jump to x0 per step, then
 * re-noising to the next timestep, for latent consistency models (LCM, LCM-LoRA).
 */
import { AlphaSchedulerBase, alphaLinearStepUnsupported, rejectThresholding } from './alpha-base.ts';
import {
  LINEAR_BETA_DEFAULTS,
  SchedulerConfigError,
  StepIndex,
  clipInPlace,
  f32,
  noiseToAlpha,
  predictX0FromAlpha,
  requirePositiveInt,
  resolveConfig,
} from './common.ts';
import type { LinearStep, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  original_inference_steps: 50,
  clip_sample: false,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  timestep_scaling: 10.0,
  rescale_betas_zero_snr: false,
};
export type LCMConfig = typeof DEFAULTS;

const SIGMA_DATA = 0.5;

export class LCMScheduler extends AlphaSchedulerBase {
  readonly name = 'LCMScheduler';
  readonly config: LCMConfig;
  private readonly idx = new StepIndex();

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    rejectThresholding('LCMScheduler', c);
    super(c);
    this.config = c;
  }

  setTimesteps(numInferenceSteps: number): void {
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const c = this.config;
    const original = c.original_inference_steps;
    if (original > c.num_train_timesteps) {
      throw new SchedulerConfigError(`original_inference_steps ${original} cannot exceed num_train_timesteps ${c.num_train_timesteps}`);
    }
    // the timesteps the LCM was distilled on: k − 1, 2k − 1, ..., T − 1
    const k = Math.floor(c.num_train_timesteps / original);
    const origin = Array.from({ length: original }, (_, i) => (i + 1) * k - 1).reverse();
    if (Math.floor(origin.length / numInferenceSteps) < 1) {
      throw new SchedulerConfigError(
        `LCMScheduler: num_inference_steps ${numInferenceSteps} cannot exceed original_inference_steps ${original}`,
      );
    }
    this.numInferenceSteps = numInferenceSteps;
    // np.linspace(0, len, N, endpoint=False) is i * (len / N)
    const step = origin.length / numInferenceSteps;
    this.timesteps = Array.from({ length: numInferenceSteps }, (_, i) => origin[Math.floor(i * step)]);
    this.idx.reset();
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('LCMScheduler: call setTimesteps before step');
    const c = this.config;
    const i = this.idx.current(this.timesteps, t);
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1] : t;
    const aT = this.alphasCumprod[t];
    const aPrev = this.alphaAt(prevT);
    const sqrtA = f32(Math.sqrt(aT));
    const sqrtB = f32(Math.sqrt(f32(1 - aT)));
    // consistency-model boundary conditions c_skip, c_out at the scaled timestep
    const st = f32(t * c.timestep_scaling);
    const st2 = f32(f32(st * st) + SIGMA_DATA ** 2);
    const cSkip = f32(SIGMA_DATA ** 2 / st2);
    const cOut = f32(st / f32(Math.sqrt(st2)));
    const n = sample.length;
    const x0 = predictX0FromAlpha(c.prediction_type, modelOutput, sample, sqrtA, sqrtB);
    if (c.clip_sample) clipInPlace(x0, c.clip_sample_range);
    const denoised = new Float32Array(n);
    for (let k = 0; k < n; k++) denoised[k] = f32(cOut * x0[k]) + f32(cSkip * sample[k]);
    let prev: Float32Array = denoised;
    if (i !== this.numInferenceSteps - 1) {
      if (!rng) throw new SchedulerConfigError('LCMScheduler needs a random source');
      prev = noiseToAlpha(aPrev, denoised, rng.randn(n));
    }
    this.idx.index = i + 1;
    return { prevSample: prev, predOriginalSample: denoised };
  }

  override setBeginIndex(i: number): void {
    this.idx.begin = i;
  }

  linearStepUnsupported(): string | null {
    return alphaLinearStepUnsupported('LCMScheduler', this.config);
  }

  /** denoised = c_out·x0 + c_skip·x with x0 = (x - √(1-ᾱ)·ε)/√ᾱ, then noised to ᾱ_prev except after the last step. */
  linearStep(t: number, length: number, rng?: SchedulerRng): LinearStep {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('LCMScheduler: call setTimesteps before step');
    const c = this.config;
    const i = this.idx.current(this.timesteps, t);
    const aT = this.alphasCumprod[t];
    const st = t * c.timestep_scaling;
    const st2 = st * st + SIGMA_DATA ** 2;
    const cSkip = SIGMA_DATA ** 2 / st2;
    const cOut = st / Math.sqrt(st2);
    let sample = cOut / Math.sqrt(aT) + cSkip;
    let output = (-cOut * Math.sqrt(1 - aT)) / Math.sqrt(aT);
    let noise = 0;
    let noiseData: Float32Array | null = null;
    if (i !== this.numInferenceSteps - 1) {
      if (!rng) throw new SchedulerConfigError('LCMScheduler needs a random source');
      const aPrev = this.alphaAt(i + 1 < this.timesteps.length ? this.timesteps[i + 1] : t);
      sample *= Math.sqrt(aPrev);
      output *= Math.sqrt(aPrev);
      noise = Math.sqrt(1 - aPrev);
      noiseData = rng.randn(length);
    }
    this.idx.index = i + 1;
    return { sample, output, noise, noiseData };
  }
}
