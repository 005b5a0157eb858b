/** diffusers' EulerAncestralDiscreteScheduler ("Euler a"): an Euler step down to σ_down, then fresh noise of σ_up. */
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
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};
export type EulerAncestralDiscreteConfig = typeof DEFAULTS;

export class EulerAncestralDiscreteScheduler implements Scheduler {
  readonly name = 'EulerAncestralDiscreteScheduler';
  readonly config: EulerAncestralDiscreteConfig;
  readonly order = 1;
  timesteps: number[];
  sigmas: number[];
  private readonly trainSigmas: Float64Array;
  private readonly idx = new StepIndex();

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    const c = this.config;
    if (c.prediction_type === 'sample') throw new SchedulerConfigError('EulerAncestralDiscreteScheduler does not support prediction_type "sample"');
    const ac = alphasCumprod(makeBetas(c));
    if (c.rescale_betas_zero_snr) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = trainingSigmas(ac);
    this.sigmas = [...Array.from(this.trainSigmas).reverse(), 0];
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
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
    });
    this.timesteps = timesteps;
    this.sigmas = sigmas;
    this.idx.reset();
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.idx.current(this.timesteps, t)]);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    if (!rng) throw new SchedulerConfigError('EulerAncestralDiscreteScheduler needs a random source');
    const i = this.idx.current(this.timesteps, t);
    const sigma = this.sigmas[i];
    const sigmaTo = this.sigmas[i + 1];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigma);
    const from2 = f32(sigma * sigma);
    const to2 = f32(sigmaTo * sigmaTo);
    const sigmaUp = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
    const sigmaDown = f32(Math.sqrt(f32(to2 - f32(sigmaUp * sigmaUp))));
    const dt = f32(sigmaDown - sigma);
    const noise = rng.randn(sample.length);
    const prev = new Float32Array(sample.length);
    for (let k = 0; k < prev.length; k++) {
      const derivative = f32(f32(sample[k] - x0[k]) / sigma);
      prev[k] = f32(sample[k] + f32(derivative * dt)) + f32(noise[k] * sigmaUp);
    }
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
