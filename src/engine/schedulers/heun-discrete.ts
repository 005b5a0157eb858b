/**
 * diffusers' HeunDiscreteScheduler (Karras et al. 2022, Algorithm 1): order 2, so N steps call
 * the model 2N − 1 times; timesteps after the first appear twice (predictor, then corrector).
 */
import {
  SchedulerConfigError,
  StepIndex,
  addSigmaNoise,
  alphasCumprod,
  f32,
  initNoiseSigmaFor,
  makeBetas,
  predictX0FromSigma,
  requirePositiveInt,
  resolveConfig,
  scaleBySigma,
  sigmaSchedule,
  trainingSigmas,
} from './common.ts';
import type { Scheduler, SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  prediction_type: 'epsilon',
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
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

export class HeunDiscreteScheduler implements Scheduler {
  readonly name = 'HeunDiscreteScheduler';
  readonly config: HeunDiscreteConfig;
  readonly order = 2;
  timesteps: number[] = [];
  sigmas: number[] = [];
  private readonly trainSigmas: Float64Array;
  private readonly idx = new StepIndex();
  /** Set between the predictor and the corrector call. */
  private pending: { derivative: Float32Array; dt: number; sample: Float32Array } | null = null;

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    if (this.config.beta_schedule === 'exp') throw new SchedulerConfigError('beta_schedule "exp" is not supported');
    this.trainSigmas = trainingSigmas(alphasCumprod(makeBetas(this.config)));
    this.setTimesteps(this.config.num_train_timesteps);
  }

  get initNoiseSigma(): number {
    return initNoiseSigmaFor(this.config.timestep_spacing, this.sigmas);
  }

  setTimesteps(numInferenceSteps: number): void {
    requirePositiveInt(numInferenceSteps, 'num_inference_steps');
    const c = this.config;
    const { timesteps, sigmas } = sigmaSchedule({
      spacing: c.timestep_spacing,
      numTrain: c.num_train_timesteps,
      steps: numInferenceSteps,
      stepsOffset: c.steps_offset,
      trainSigmas: this.trainSigmas,
      useKarras: c.use_karras_sigmas,
      useExponential: c.use_exponential_sigmas,
      useBeta: c.use_beta_sigmas,
    });
    // σ0, σ1, σ1, ..., σ_{N−1}, σ_{N−1}, 0 and t0, t1, t1, ..., t_{N−1}, t_{N−1}
    this.sigmas = [...repeatAfterFirst(sigmas.slice(0, -1)), 0];
    this.timesteps = repeatAfterFirst(timesteps);
    this.pending = null;
    this.idx.reset();
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.idx.current(this.timesteps, t)]);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    const first = this.pending === null;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const sigmaInput = first ? sigma : sigmaNext;
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigmaInput);
    if (this.config.clip_sample) {
      const r = this.config.clip_sample_range;
      for (let k = 0; k < x0.length; k++) x0[k] = Math.min(Math.max(x0[k], -r), r);
    }
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

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addSigmaNoise(original, noise, this.sigmas[this.idx.forNoise(this.timesteps, t)]);
  }

  setBeginIndex(i: number): void {
    this.idx.begin = i;
  }
}
