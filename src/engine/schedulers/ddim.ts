/** diffusers' DDIMScheduler (Song et al. 2020), deterministic unless `eta` > 0. */
import { AlphaSchedulerBase, alphaLinearStepUnsupported, rejectThresholding } from './alpha-base.ts';
import {
  LINEAR_BETA_DEFAULTS,
  SchedulerConfigError,
  clipInPlace,
  f32,
  npRound,
  predictX0FromAlpha,
  requirePositiveInt,
  resolveConfig,
  spacedTimesteps,
} from './common.ts';
import type { LinearStep, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
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

/** DDIM's and DDPM's bounds on num_inference_steps. */
export function checkInferenceSteps(numInferenceSteps: number, numTrain: number): void {
  requirePositiveInt(numInferenceSteps, 'num_inference_steps');
  if (numInferenceSteps > numTrain) {
    throw new SchedulerConfigError(`num_inference_steps ${numInferenceSteps} cannot exceed num_train_timesteps ${numTrain}`);
  }
}

export class DDIMScheduler extends AlphaSchedulerBase {
  readonly name = 'DDIMScheduler';
  readonly config: DDIMConfig;
  /** η of the DDIM paper; diffusers' pipelines pass 0 unless asked, which makes DDIM deterministic. */
  eta = 0;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    rejectThresholding('DDIMScheduler', c);
    super(c);
    this.config = c;
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    checkInferenceSteps(numInferenceSteps, c.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = integerTimesteps(c.timestep_spacing, c.num_train_timesteps, numInferenceSteps, c.steps_offset);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('DDIMScheduler: call setTimesteps before step');
    const c = this.config;
    // diffusers steps back by T // N whatever the spacing
    const prevT = t - Math.floor(c.num_train_timesteps / this.numInferenceSteps);
    const aT = this.alphasCumprod[t];
    const aPrev = this.alphaAt(prevT);
    const bT = f32(1 - aT);
    const sqrtA = f32(Math.sqrt(aT));
    const sqrtB = f32(Math.sqrt(bT));
    const n = sample.length;
    const x0 = predictX0FromAlpha(c.prediction_type, modelOutput, sample, sqrtA, sqrtB);
    // ε is derived before clip_sample, as diffusers does
    const eps = new Float32Array(n);
    if (c.prediction_type === 'epsilon') eps.set(modelOutput);
    else if (c.prediction_type === 'sample') for (let i = 0; i < n; i++) eps[i] = f32(sample[i] - f32(sqrtA * x0[i])) / sqrtB;
    else for (let i = 0; i < n; i++) eps[i] = f32(sqrtA * modelOutput[i]) + f32(sqrtB * sample[i]);
    if (c.clip_sample) clipInPlace(x0, c.clip_sample_range);
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

  linearStepUnsupported(): string | null {
    return alphaLinearStepUnsupported('DDIMScheduler', this.config);
  }

  /** x0 = (x - √(1-ᾱ)·ε)/√ᾱ into prev = √ᾱ_prev·x0 + dir·ε (+ σ_t·noise when η > 0), regrouped by x and ε. */
  linearStep(t: number, length: number, rng?: SchedulerRng): LinearStep {
    if (this.numInferenceSteps === null) throw new SchedulerConfigError('DDIMScheduler: call setTimesteps before step');
    const c = this.config;
    const aT = this.alphasCumprod[t];
    const aPrev = this.alphaAt(t - Math.floor(c.num_train_timesteps / this.numInferenceSteps));
    const bT = 1 - aT;
    const std = this.eta * Math.sqrt(((1 - aPrev) / bT) * (1 - aT / aPrev));
    const dirCoef = Math.sqrt(1 - aPrev - std * std);
    const ratio = Math.sqrt(aPrev / aT);
    let noiseData: Float32Array | null = null;
    if (this.eta > 0) {
      if (!rng) throw new SchedulerConfigError('DDIMScheduler: eta > 0 needs a random source');
      noiseData = rng.randn(length);
    }
    return { sample: ratio, output: dirCoef - ratio * Math.sqrt(bT), noise: noiseData ? std : 0, noiseData };
  }
}
