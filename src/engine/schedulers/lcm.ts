/**
 * diffusers' LCMScheduler (Luo et al. 2023): one consistency-model jump to x0 per step, then
 * re-noising to the next timestep, for latent consistency models (LCM, LCM-LoRA).
 */
import {
  SchedulerConfigError,
  alphasCumprod,
  f32,
  indexForTimestep,
  makeBetas,
  requirePositiveInt,
  resolveConfig,
} from './common.ts';
import { addNoiseAlpha } from './ddim.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null as number[] | null,
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

export class LCMScheduler implements Scheduler {
  readonly name = 'LCMScheduler';
  readonly config: LCMConfig;
  readonly order = 1;
  readonly initNoiseSigma = 1;
  timesteps: number[];
  private readonly alphasCumprod: Float64Array;
  private readonly finalAlphaCumprod: number;
  private numInferenceSteps: number | null = null;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    const c = this.config;
    if (c.thresholding) throw new SchedulerConfigError('LCMScheduler: thresholding is not supported (pixel-space models only)');
    this.alphasCumprod = alphasCumprod(makeBetas(c));
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
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
    this.stepIndex = null;
    this.beginIndex = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('LCMScheduler: call setTimesteps before step');
    const c = this.config;
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, t);
    const i = this.stepIndex;
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1] : t;
    const aT = this.alphasCumprod[t];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const sqrtA = f32(Math.sqrt(aT));
    const sqrtB = f32(Math.sqrt(f32(1 - aT)));
    // consistency-model boundary conditions c_skip, c_out at the scaled timestep
    const st = f32(t * c.timestep_scaling);
    const st2 = f32(f32(st * st) + SIGMA_DATA ** 2);
    const cSkip = f32(SIGMA_DATA ** 2 / st2);
    const cOut = f32(st / f32(Math.sqrt(st2)));
    const n = sample.length;
    const x0 = new Float32Array(n);
    switch (c.prediction_type) {
      case 'epsilon':
        for (let k = 0; k < n; k++) x0[k] = f32(sample[k] - f32(sqrtB * modelOutput[k])) / sqrtA;
        break;
      case 'sample':
        x0.set(modelOutput);
        break;
      case 'v_prediction':
        for (let k = 0; k < n; k++) x0[k] = f32(sqrtA * sample[k]) - f32(sqrtB * modelOutput[k]);
        break;
      default:
        throw new SchedulerConfigError(
          `prediction_type "${c.prediction_type}" is not supported (use "epsilon", "sample" or "v_prediction")`,
        );
    }
    if (c.clip_sample) {
      const r = c.clip_sample_range;
      for (let k = 0; k < n; k++) x0[k] = Math.min(Math.max(x0[k], -r), r);
    }
    const denoised = new Float32Array(n);
    for (let k = 0; k < n; k++) denoised[k] = f32(cOut * x0[k]) + f32(cSkip * sample[k]);
    let prev = denoised;
    if (i !== this.numInferenceSteps - 1) {
      if (!rng) throw new SchedulerConfigError('LCMScheduler needs a random source');
      const noise = rng.randn(n);
      const sa = f32(Math.sqrt(aPrev));
      const sb = f32(Math.sqrt(f32(1 - aPrev)));
      prev = new Float32Array(n);
      for (let k = 0; k < n; k++) prev[k] = f32(sa * denoised[k]) + f32(sb * noise[k]);
    }
    this.stepIndex = i + 1;
    return { prevSample: prev, predOriginalSample: denoised };
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlpha(this.alphasCumprod, original, noise, t);
  }

  setBeginIndex(i: number): void {
    this.beginIndex = i;
  }
}
