/**
 * What the k-diffusion schedulers (Euler, Euler ancestral, Heun, LMS, KDPM2, KDPM2 ancestral)
 * share besides their step: the training sigmas, the spaced sigma schedule of set_timesteps, the
 * step index, init_noise_sigma, input scaling and add_noise.
 */
import {
  StepIndex,
  addSigmaNoise,
  initNoiseSigmaFor,
  requirePositiveInt,
  scaleBySigma,
  sigmaSchedule,
  trainSchedule,
  type BetaConfig,
  type SigmaScheduleOptions,
} from './common.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';

/** The config keys the shared set_timesteps reads; a scheduler without a sigma option lacks its key. */
export interface SigmaSchedulerConfig extends BetaConfig {
  timestep_spacing: string;
  steps_offset: number;
  use_karras_sigmas?: boolean;
  use_exponential_sigmas?: boolean;
  use_beta_sigmas?: boolean;
}

type ScheduleExtras = Omit<SigmaScheduleOptions, 'spacing' | 'numTrain' | 'steps' | 'stepsOffset' | 'trainSigmas'>;

export abstract class SigmaSchedulerBase implements Scheduler {
  abstract readonly name: string;
  abstract readonly config: Readonly<SchedulerConfig>;
  abstract readonly order: number;
  timesteps: number[] = [];
  sigmas: number[] = [];
  /** float32 training sigmas, increasing with the training timestep. */
  protected readonly trainSigmas: Float64Array;
  protected readonly idx = new StepIndex();
  private readonly schedule: Readonly<SigmaSchedulerConfig>;

  constructor(config: Readonly<SigmaSchedulerConfig>) {
    this.schedule = config;
    this.trainSigmas = trainSchedule(config).sigmas;
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult;

  get initNoiseSigma(): number {
    return initNoiseSigmaFor(this.schedule.timestep_spacing, this.sigmas);
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.idx.current(this.timesteps, t)]);
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addSigmaNoise(original, noise, this.sigmas[this.idx.forNoise(this.timesteps, t)]);
  }

  setBeginIndex(i: number): void {
    this.idx.begin = i;
  }

  /** set_timesteps' spaced timesteps and sigmas (plus the final one) from the config; resets the step index. */
  protected spacedSchedule(steps: number, extras: ScheduleExtras = {}): ReturnType<typeof sigmaSchedule> {
    requirePositiveInt(steps, 'num_inference_steps');
    const c = this.schedule;
    const schedule = sigmaSchedule({
      spacing: c.timestep_spacing,
      numTrain: c.num_train_timesteps,
      steps,
      stepsOffset: c.steps_offset,
      trainSigmas: this.trainSigmas,
      useKarras: c.use_karras_sigmas,
      useExponential: c.use_exponential_sigmas,
      useBeta: c.use_beta_sigmas,
      ...extras,
    });
    this.idx.reset();
    return schedule;
  }
}
