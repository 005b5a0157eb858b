/** diffusers' EulerAncestralDiscreteScheduler ("Euler a"): an Euler step down to σ_down, then fresh noise of σ_up. */
import {
  LINEAR_BETA_DEFAULTS,
  SchedulerConfigError,
  ancestralSigmas,
  descendingTimesteps,
  f32,
  predictX0FromSigma,
  resolveConfig,
} from './common.ts';
import { SigmaSchedulerBase } from './sigma-base.ts';
import type { LinearStep, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

const DEFAULTS = {
  ...LINEAR_BETA_DEFAULTS,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};
export type EulerAncestralDiscreteConfig = typeof DEFAULTS;

export class EulerAncestralDiscreteScheduler extends SigmaSchedulerBase {
  readonly name = 'EulerAncestralDiscreteScheduler';
  readonly config: EulerAncestralDiscreteConfig;
  readonly order = 1;

  constructor(config: SchedulerConfig = {}) {
    const c = resolveConfig(DEFAULTS, config);
    if (c.prediction_type === 'sample') throw new SchedulerConfigError('EulerAncestralDiscreteScheduler does not support prediction_type "sample"');
    super(c);
    this.config = c;
    this.sigmas = [...Array.from(this.trainSigmas).reverse(), 0];
    this.timesteps = descendingTimesteps(c.num_train_timesteps);
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps);
    this.timesteps = timesteps;
    this.sigmas = sigmas;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult {
    if (!rng) throw new SchedulerConfigError('EulerAncestralDiscreteScheduler needs a random source');
    const i = this.idx.current(this.timesteps, t);
    const sigma = this.sigmas[i];
    const sigmaTo = this.sigmas[i + 1];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigma);
    const { up: sigmaUp, down: sigmaDown } = ancestralSigmas(sigma, sigmaTo);
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

  linearStepUnsupported(): string | null {
    return this.config.prediction_type === 'epsilon' ? null : `EulerAncestralDiscreteScheduler steps linearly only for prediction_type "epsilon" (this model: "${this.config.prediction_type}")`;
  }

  /** ε prediction: prev = sample + (σ_down - σ)·ε + σ_up·noise. */
  linearStep(t: number, length: number, rng?: SchedulerRng): LinearStep {
    if (!rng) throw new SchedulerConfigError('EulerAncestralDiscreteScheduler needs a random source');
    const i = this.idx.current(this.timesteps, t);
    const sigma = this.sigmas[i];
    const { up, down } = ancestralSigmas(sigma, this.sigmas[i + 1]);
    const noiseData = rng.randn(length);
    this.idx.index = i + 1;
    return { sample: 1, output: f32(down - sigma), noise: up, noiseData };
  }
}
