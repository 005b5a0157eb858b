/**
 * The scheduler registry: the API's scheduler names, and a factory for those the engine runs.
 * Registering a scheduler is one line in REGISTRY.
 */
import { SchedulerConfigError } from './common.ts';
import { DDIMScheduler } from './ddim.ts';
import { DDPMScheduler } from './ddpm.ts';
import { createDEISMultistepScheduler } from './deis-multistep.ts';
import { createDPMSolverMultistepScheduler } from './dpm-solver-multistep.ts';
import { createDPMSolverSinglestepScheduler } from './dpm-solver-singlestep.ts';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral-discrete.ts';
import { EulerDiscreteScheduler } from './euler-discrete.ts';
import { HeunDiscreteScheduler } from './heun-discrete.ts';
import { IPNDMScheduler } from './ipndm.ts';
import { KDPM2AncestralDiscreteScheduler } from './kdpm2-ancestral-discrete.ts';
import { KDPM2DiscreteScheduler } from './kdpm2-discrete.ts';
import { LCMScheduler } from './lcm.ts';
import { LMSDiscreteScheduler } from './lms-discrete.ts';
import { PNDMScheduler } from './pndm.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';
import { createUniPCMultistepScheduler } from './unipc-multistep.ts';

export type { Scheduler, SchedulerConfig, SchedulerRng, StepResult } from './types.ts';
export { SchedulerConfigError } from './common.ts';

/** Every scheduler name the hosted API accepts, in its own order. */
export const SCHEDULER_NAMES = [
  'DDPMScheduler',
  'DDIMScheduler',
  'PNDMScheduler',
  'LMSDiscreteScheduler',
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'DPMSolverMultistepScheduler',
  'HeunDiscreteScheduler',
  'KDPM2DiscreteScheduler',
  'DPMSolverSinglestepScheduler',
  'KDPM2AncestralDiscreteScheduler',
  'UniPCMultistepScheduler',
  'DDIMInverseScheduler',
  'DEISMultistepScheduler',
  'IPNDMScheduler',
  'KarrasVeScheduler',
  'ScoreSdeVeScheduler',
  'LCMScheduler',
] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

type SchedulerFactory = (config: SchedulerConfig) => Scheduler;

/** name -> factory; a name of SCHEDULER_NAMES missing here is "not implemented yet". */
const REGISTRY: Partial<Record<SchedulerName, SchedulerFactory>> = {
  DDPMScheduler: (c) => new DDPMScheduler(c),
  DDIMScheduler: (c) => new DDIMScheduler(c),
  PNDMScheduler: (c) => new PNDMScheduler(c),
  LMSDiscreteScheduler: (c) => new LMSDiscreteScheduler(c),
  EulerDiscreteScheduler: (c) => new EulerDiscreteScheduler(c),
  EulerAncestralDiscreteScheduler: (c) => new EulerAncestralDiscreteScheduler(c),
  HeunDiscreteScheduler: (c) => new HeunDiscreteScheduler(c),
  KDPM2DiscreteScheduler: (c) => new KDPM2DiscreteScheduler(c),
  KDPM2AncestralDiscreteScheduler: (c) => new KDPM2AncestralDiscreteScheduler(c),
  IPNDMScheduler: (c) => new IPNDMScheduler(c),
  LCMScheduler: (c) => new LCMScheduler(c),
  DPMSolverMultistepScheduler: createDPMSolverMultistepScheduler,
  DPMSolverSinglestepScheduler: createDPMSolverSinglestepScheduler,
  UniPCMultistepScheduler: createUniPCMultistepScheduler,
  DEISMultistepScheduler: createDEISMultistepScheduler,
};

/** Names the hosted API knows that can never sample an SD model's latents, and why. */
const UNSAMPLEABLE: Partial<Record<SchedulerName, string>> = {
  DDIMInverseScheduler: 'it inverts images into noise (DDIM inversion) rather than generating them',
  KarrasVeScheduler: 'it is the variance-exploding sampler of pixel-space Karras-VE models, not of latent diffusion models',
  ScoreSdeVeScheduler: 'it is the score-SDE sampler of variance-exploding (NCSN++) models, not of latent diffusion models',
};

function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(name);
}

/** Whether createScheduler(name) would succeed. */
export function isSupportedScheduler(name: string): boolean {
  return isSchedulerName(name) && REGISTRY[name] !== undefined;
}

/** The names createScheduler accepts, in the API's order. */
export function supportedSchedulerNames(): SchedulerName[] {
  return SCHEDULER_NAMES.filter((n) => REGISTRY[n] !== undefined);
}

/**
 * A scheduler for `name`, configured like diffusers' `Scheduler.from_config(config)`: `config`
 * is the model's scheduler_config.json merged with the request's overrides.
 */
export function createScheduler(name: string, config: SchedulerConfig = {}): Scheduler {
  const supported = `Supported schedulers: ${supportedSchedulerNames().join(', ')}.`;
  if (!isSchedulerName(name)) throw new SchedulerConfigError(`Unknown scheduler "${name}". ${supported}`);
  const why = UNSAMPLEABLE[name];
  if (why) throw new SchedulerConfigError(`${name} cannot be used for text2img/img2img/inpaint: ${why}. ${supported}`);
  const factory = REGISTRY[name];
  if (!factory) throw new SchedulerConfigError(`${name} is not implemented yet in the local engine. ${supported}`);
  return factory(config);
}

/**
 * diffusers' StableDiffusionImg2ImgPipeline.get_timesteps: the tail of the schedule that
 * `strength` leaves, for schedulers of any order. Calls setTimesteps(numInferenceSteps) first and
 * sets the scheduler's begin index, so that addNoise and step start at the right place.
 */
export function getImg2ImgTimesteps(
  scheduler: Scheduler,
  numInferenceSteps: number,
  strength: number,
): { timesteps: number[]; latentTimestep: number } {
  if (!(strength >= 0 && strength <= 1)) throw new SchedulerConfigError(`strength must be in [0, 1], got ${strength}`);
  scheduler.setTimesteps(numInferenceSteps);
  const initTimestep = Math.min(Math.floor(numInferenceSteps * strength), numInferenceSteps);
  const tStart = Math.max(numInferenceSteps - initTimestep, 0);
  const timesteps = scheduler.timesteps.slice(tStart * scheduler.order);
  if (timesteps.length === 0) {
    throw new SchedulerConfigError(
      `strength ${strength} with ${numInferenceSteps} steps leaves no denoising step to run: ` +
        'strength × num_inference_steps must be at least 1.',
    );
  }
  scheduler.setBeginIndex(tStart * scheduler.order);
  return { timesteps, latentTimestep: timesteps[0] };
}

/**
 * The UNet calls one image takes: the timesteps the loop runs, which for a second-order scheduler
 * (Heun, KDPM2) are two per step but the last. `strength` null is text2img; otherwise the tail
 * that img2img and inpaint run. Progress and ETA count these, as the engine reports its steps.
 */
export function unetCallsPerImage(name: string, config: SchedulerConfig, steps: number, strength: number | null): number {
  const scheduler = createScheduler(name, config);
  if (strength === null) {
    scheduler.setTimesteps(steps);
    return scheduler.timesteps.length;
  }
  return getImg2ImgTimesteps(scheduler, steps, strength).timesteps.length;
}
