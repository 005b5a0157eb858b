/**
 * The scheduler contract. Schedulers are pure: config in, arrays out; no ORT, no DOM.
 * Names follow the issue tracker's contract (other tools call them), numerics follow diffusers.
 */

/** Noise source for ancestral / SDE schedulers; successive calls continue one stream. */
export interface SchedulerRng {
  randn(length: number): Float32Array;
}

export interface StepResult {
  prevSample: Float32Array;
  predOriginalSample?: Float32Array;
}

/** diffusers' scheduler_config.json, snake_case keys as diffusers names them. */
export type SchedulerConfig = Record<string, unknown>;

/**
 * A step that is a fixed linear combination of its inputs:
 * prev = sample·`sample` + modelOutput·`output` + noise·`noise`. The engine runs such a step as a
 * small graph on the GPU (tools/engine-helpers), so the latents never leave it between steps.
 */
export interface LinearStep {
  sample: number;
  output: number;
  noise: number;
  /** The noise the step draws, from the same rng calls as step() makes; null when it draws none. */
  noiseData: Float32Array | null;
}

export interface Scheduler {
  /** The API's name, e.g. "EulerDiscreteScheduler". */
  readonly name: string;
  /** The resolved config: the model's values for known keys, this scheduler's defaults for the rest. */
  readonly config: Readonly<SchedulerConfig>;
  /** Timesteps the UNet is called with, in call order (Heun/KDPM2 repeat, PNDM repeats one). */
  timesteps: number[];
  /** Noise levels per call, where the scheduler has them (length timesteps.length + 1 usually). */
  sigmas?: number[];
  initNoiseSigma: number;
  order: number;
  setTimesteps(numInferenceSteps: number): void;
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: SchedulerRng): StepResult;
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array;
  setBeginIndex(i: number): void;
  /**
   * Schedulers whose step is linear in (sample, model output, noise) with per-step scalars have these.
   * linearStepUnsupported says why this configuration is not (null: it is); linearStep then does what
   * step() does to the scheduler's state and rng, returning the weights instead of the new sample.
   */
  linearStepUnsupported?(): string | null;
  linearStep?(t: number, length: number, rng?: SchedulerRng): LinearStep;
}
