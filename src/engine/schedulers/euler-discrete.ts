/** diffusers' EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 without churn). */
import {
  SchedulerConfigError,
  StepIndex,
  addSigmaNoise,
  alphasCumprod,
  f32,
  initNoiseSigmaFor,
  makeBetas,
  npLinspace,
  predictX0FromSigma,
  resolveConfig,
  requirePositiveInt,
  scaleBySigma,
  sigmaSchedule,
  trainingSigmas,
} from './common.ts';
import type { Scheduler, SchedulerConfig, StepResult } from './types.ts';

const DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  final_sigmas_type: 'zero',
};
export type EulerDiscreteConfig = typeof DEFAULTS;

export class EulerDiscreteScheduler implements Scheduler {
  readonly name = 'EulerDiscreteScheduler';
  readonly config: EulerDiscreteConfig;
  readonly order = 1;
  timesteps: number[];
  sigmas: number[];
  private readonly trainSigmas: Float64Array;
  private readonly idx = new StepIndex();

  constructor(config: SchedulerConfig = {}) {
    this.config = resolveConfig(DEFAULTS, config);
    const c = this.config;
    const ac = alphasCumprod(makeBetas(c));
    // zero terminal SNR would make the last sigma infinite; diffusers clamps ᾱ_T to 2^-24
    if (c.rescale_betas_zero_snr) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = trainingSigmas(ac);
    // before set_timesteps diffusers holds the whole training schedule, which sets init_noise_sigma
    this.sigmas = [...Array.from(this.trainSigmas).reverse(), 0];
    this.timesteps = this.continuousV()
      ? this.sigmas.slice(0, -1).map((s) => f32(0.25 * f32(Math.log(s))))
      : npLinspace(0, c.num_train_timesteps - 1, c.num_train_timesteps).reverse().map(f32);
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
      sigmaMin: c.sigma_min,
      sigmaMax: c.sigma_max,
      interpolation: c.interpolation_type,
      finalSigma: c.final_sigmas_type,
    });
    this.sigmas = sigmas;
    // v-prediction models trained in continuous time take c_noise = ¼·ln σ instead of a timestep
    this.timesteps = this.continuousV()
      ? sigmas.slice(0, -1).map((s) => f32(0.25 * f32(Math.log(s))))
      : timesteps;
    this.idx.reset();
  }

  private continuousV(): boolean {
    return this.config.timestep_type === 'continuous' && this.config.prediction_type === 'v_prediction';
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.idx.current(this.timesteps, t)]);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    const i = this.idx.current(this.timesteps, t);
    if (i + 1 >= this.sigmas.length) throw new SchedulerConfigError('step called after the last timestep');
    const sigma = this.sigmas[i];
    const x0 = predictX0FromSigma(this.config.prediction_type, modelOutput, sample, sigma);
    const dt = f32(this.sigmas[i + 1] - sigma);
    const prev = new Float32Array(sample.length);
    for (let k = 0; k < prev.length; k++) {
      const derivative = f32(f32(sample[k] - x0[k]) / sigma);
      prev[k] = sample[k] + f32(derivative * dt);
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
