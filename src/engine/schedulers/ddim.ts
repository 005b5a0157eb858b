/** diffusers' DDIMScheduler (Song et al. 2020), deterministic unless `eta` > 0. */
import {
  SchedulerConfigError,
  alphasCumprod,
  f32,
  makeBetas,
  npRound,
  requirePositiveInt,
  resolveConfig,
  spacedTimesteps,
} from './common.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  clip_sample: true,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
};
export type DDIMConfig = typeof DEFAULTS;

/** Integer training timesteps of DDIM-like schedulers (DDIM, DDPM, LCM): rounded, descending. */
export function integerTimesteps(spacing: string, numTrain: number, n: number, stepsOffset: number): number[] {
  const ts = spacedTimesteps(spacing, numTrain, n, stepsOffset);
  return spacing === 'linspace' ? ts.map(npRound) : ts;
}

export class DDIMScheduler implements Scheduler {
  readonly name = 'DDIMScheduler';
  readonly config: DDIMConfig;
  readonly order = 1;
  readonly initNoiseSigma = 1;
  timesteps: number[];
  /** η of the DDIM paper; diffusers' pipelines pass 0 unless asked, which makes DDIM deterministic. */
  eta = 0;
  private readonly alphasCumprod: Float64Array;
  private readonly finalAlphaCumprod: number;
  private numInferenceSteps: number | null = null;

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    const c = this.config;
    if (c.thresholding) throw new SchedulerConfigError('DDIMScheduler: thresholding is not supported (pixel-space models only)');
    this.alphasCumprod = alphasCumprod(makeBetas(c));
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
  }

  setTimesteps(numInferenceSteps: number): void {
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const c = this.config;
    if (numInferenceSteps > c.num_train_timesteps) {
      throw new SchedulerConfigError(
        `num_inference_steps ${numInferenceSteps} cannot exceed num_train_timesteps ${c.num_train_timesteps}`,
      );
    }
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = integerTimesteps(c.timestep_spacing, c.num_train_timesteps, numInferenceSteps, c.steps_offset);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('DDIMScheduler: call setTimesteps before step');
    const c = this.config;
    // diffusers steps back by T // N whatever the spacing
    const prevT = t - Math.floor(c.num_train_timesteps / this.numInferenceSteps);
    const aT = this.alphasCumprod[t];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const bT = f32(1 - aT);
    const sqrtA = f32(Math.sqrt(aT));
    const sqrtB = f32(Math.sqrt(bT));
    const n = sample.length;
    const x0 = new Float32Array(n);
    const eps = new Float32Array(n);
    switch (c.prediction_type) {
      case 'epsilon':
        for (let i = 0; i < n; i++) x0[i] = f32(sample[i] - f32(sqrtB * modelOutput[i])) / sqrtA;
        eps.set(modelOutput);
        break;
      case 'sample':
        x0.set(modelOutput);
        for (let i = 0; i < n; i++) eps[i] = f32(sample[i] - f32(sqrtA * x0[i])) / sqrtB;
        break;
      case 'v_prediction':
        for (let i = 0; i < n; i++) {
          x0[i] = f32(sqrtA * sample[i]) - f32(sqrtB * modelOutput[i]);
          eps[i] = f32(sqrtA * modelOutput[i]) + f32(sqrtB * sample[i]);
        }
        break;
      default:
        throw new SchedulerConfigError(
          `prediction_type "${c.prediction_type}" is not supported (use "epsilon", "sample" or "v_prediction")`,
        );
    }
    if (c.clip_sample) {
      const r = c.clip_sample_range;
      for (let i = 0; i < n; i++) x0[i] = Math.min(Math.max(x0[i], -r), r);
    }
    // σ_t of eq. 16; zero when η = 0
    const variance = f32(f32(f32(1 - aPrev) / bT) * f32(1 - f32(aT / aPrev)));
    const std = f32(this.eta * f32(Math.sqrt(variance)));
    const dirCoef = f32(Math.sqrt(f32(f32(1 - aPrev) - f32(std * std))));
    const sqrtAPrev = f32(Math.sqrt(aPrev));
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) prev[i] = f32(sqrtAPrev * x0[i]) + f32(dirCoef * eps[i]);
    if (this.eta > 0) {
      if (!rng) throw new SchedulerConfigError('DDIMScheduler: eta > 0 needs a random source');
      const noise = rng.randn(n);
      for (let i = 0; i < n; i++) prev[i] = prev[i] + f32(std * noise[i]);
    }
    return { prevSample: prev, predOriginalSample: x0 };
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlpha(this.alphasCumprod, original, noise, t);
  }

  setBeginIndex(): void {
    // DDIM finds its place from the timestep value alone
  }
}

/** √ᾱ_t · x0 + √(1 − ᾱ_t) · ε in float32, the add_noise of the DDPM family. */
export function addNoiseAlpha(
  alphasCumprodF32: Float64Array,
  original: Float32Array,
  noise: Float32Array,
  t: number,
): Float32Array {
  const a = alphasCumprodF32[t];
  if (a === undefined) throw new SchedulerConfigError(`timestep ${t} is outside the training schedule`);
  const sa = f32(Math.sqrt(a));
  const sb = f32(Math.sqrt(f32(1 - a)));
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = f32(sa * original[i]) + f32(sb * noise[i]);
  return out;
}
