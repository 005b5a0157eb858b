/**
 * The denoising loop, shared by every mode. It follows diffusers' StableDiffusionImg2ImgPipeline:
 * strength picks the timesteps (get_timesteps), the image latents are scaled by the VAE's
 * scaling factor and passed to add_noise, classifier-free guidance is one batch-2 UNet call.
 * It sees models only through `DiffusionModels`, so the math is testable without ORT.
 */
import { createScheduler, getImg2ImgTimesteps } from './schedulers/index.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng } from './schedulers/types.ts';
import type { HostTensor } from './runtime.ts';

/** What the loop needs from the model set; `engine.ts` implements it over ORT sessions. */
export interface DiffusionModels {
  /** Token ids [B, 77] -> text embeddings [B, 77, D]. */
  encodeText(ids: Int32Array[]): Promise<HostTensor>;
  /** sample [B, 4, h, w] at one timestep with text [B, 77, D] -> noise prediction [B, 4, h, w]. */
  predictNoise(sample: HostTensor, timestep: number, text: HostTensor): Promise<Float32Array>;
  /** Image [1, 3, H, W] in [-1, 1] -> the encoder's output: a latent [1, 4, h, w] or distribution parameters [1, 8, h, w]. */
  encodeImage(image: HostTensor): Promise<HostTensor>;
  /** Latents [1, 4, h, w] (already divided by the scaling factor) -> image [1, 3, H, W] in [-1, 1]. */
  decodeLatents(latents: HostTensor): Promise<HostTensor>;
  /** The VAE config's scaling_factor (0.18215 for SD 1.x). */
  readonly scalingFactor: number;
  readonly latentChannels: number;
}

export interface Img2ImgParams {
  condIds: Int32Array;
  uncondIds: Int32Array;
  /** [3, H, W] in [-1, 1]. */
  image: Float32Array;
  width: number;
  height: number;
  steps: number;
  strength: number;
  guidanceScale: number;
  schedulerName: string;
  schedulerConfig: SchedulerConfig;
  /** Draws the encoder's sample noise (if any), the initial noise and ancestral noise, in diffusers' order. */
  rng: SchedulerRng;
}

export interface StepProgress {
  step: number;
  totalSteps: number;
  timestep: number;
}

export interface LoopHooks {
  onStep?(p: StepProgress): void | Promise<void>;
  /** Checked before every step so a cancel ends the run within one step. */
  shouldStop?(): boolean;
}

export class JobCancelled extends Error {
  override name = 'JobCancelled';
  constructor() {
    super('The job was cancelled');
  }
}

/** Guidance as diffusers applies it: uncond + g * (cond - uncond) over a [2, ...] prediction. */
export function combineGuidance(pred: Float32Array, guidanceScale: number): Float32Array {
  const half = pred.length / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const u = pred[i];
    out[i] = u + guidanceScale * (pred[half + i] - u);
  }
  return out;
}

/** diffusers' DiagonalGaussianDistribution.sample(): mean + exp(0.5 * clamp(logvar, -30, 20)) * randn. */
export function sampleLatentDistribution(params: Float32Array, channels: number, rng: SchedulerRng): Float32Array {
  const half = params.length / 2;
  if (channels * 2 * (half / channels) !== params.length) throw new Error('latent parameters do not split into mean and logvar');
  const noise = rng.randn(half);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const logvar = Math.min(20, Math.max(-30, params[half + i]));
    out[i] = params[i] + Math.exp(0.5 * logvar) * noise[i];
  }
  return out;
}

export function usesGuidance(guidanceScale: number): boolean {
  return guidanceScale > 1;
}

/** Text embeddings for the run: [uncond, cond] when guided, [cond] when not. */
export async function encodePrompt(models: DiffusionModels, condIds: Int32Array, uncondIds: Int32Array, guided: boolean): Promise<HostTensor> {
  return models.encodeText(guided ? [uncondIds, condIds] : [condIds]);
}

/** Image latents as the UNet sees them: the encoder's latent (sampled if it gives a distribution) × scaling factor. */
export async function encodeInitLatents(models: DiffusionModels, image: Float32Array, width: number, height: number, rng: SchedulerRng): Promise<HostTensor> {
  const encoded = await models.encodeImage({ data: image, dims: [1, 3, height, width] });
  const [, channels, h, w] = encoded.dims;
  const latent = channels === models.latentChannels * 2
    ? sampleLatentDistribution(encoded.data as Float32Array, models.latentChannels, rng)
    : (encoded.data as Float32Array);
  const scaled = new Float32Array(latent.length);
  for (let i = 0; i < latent.length; i++) scaled[i] = latent[i] * models.scalingFactor;
  return { data: scaled, dims: [1, models.latentChannels, h, w] };
}

/** Runs the scheduler loop from `latents` over `timesteps`; returns the final latents. */
export async function denoise(
  models: DiffusionModels,
  scheduler: Scheduler,
  timesteps: number[],
  start: HostTensor,
  text: HostTensor,
  guidanceScale: number,
  rng: SchedulerRng,
  hooks: LoopHooks = {},
): Promise<Float32Array> {
  const guided = usesGuidance(guidanceScale);
  let latents = start.data as Float32Array;
  const dims = start.dims;
  for (let i = 0; i < timesteps.length; i++) {
    if (hooks.shouldStop?.()) throw new JobCancelled();
    const t = timesteps[i];
    const input = scheduler.scaleModelInput(latents, t);
    let noisePred: Float32Array;
    if (guided) {
      const batch = new Float32Array(input.length * 2);
      batch.set(input, 0);
      batch.set(input, input.length);
      const pred = await models.predictNoise({ data: batch, dims: [2, ...dims.slice(1)] }, t, text);
      noisePred = combineGuidance(pred, guidanceScale);
    } else {
      noisePred = await models.predictNoise({ data: input, dims }, t, text);
    }
    latents = scheduler.step(noisePred, t, latents, rng).prevSample;
    await hooks.onStep?.({ step: i + 1, totalSteps: timesteps.length, timestep: t });
  }
  // A NaN would decode to a black image; say what went wrong instead.
  if (!latents.every(Number.isFinite)) throw new Error(`${scheduler.name} produced non-finite latents`);
  return latents;
}

/** Final latents -> image tensor [1, 3, H, W] in [-1, 1]. */
export async function decode(models: DiffusionModels, latents: Float32Array, dims: number[]): Promise<HostTensor> {
  const unscaled = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) unscaled[i] = latents[i] / models.scalingFactor;
  return models.decodeLatents({ data: unscaled, dims });
}

/** One img2img image: diffusers' StableDiffusionImg2ImgPipeline.__call__ for batch 1. */
export async function runImg2Img(models: DiffusionModels, p: Img2ImgParams, hooks: LoopHooks = {}): Promise<HostTensor> {
  const guided = usesGuidance(p.guidanceScale);
  const text = await encodePrompt(models, p.condIds, p.uncondIds, guided);
  const scheduler = createScheduler(p.schedulerName, p.schedulerConfig);
  const { timesteps, latentTimestep } = getImg2ImgTimesteps(scheduler, p.steps, p.strength);
  const init = await encodeInitLatents(models, p.image, p.width, p.height, p.rng);
  const noise = p.rng.randn(init.data.length);
  const noisy = scheduler.addNoise(init.data as Float32Array, noise, latentTimestep);
  const latents = await denoise(models, scheduler, timesteps, { data: noisy, dims: init.dims }, text, p.guidanceScale, p.rng, hooks);
  return decode(models, latents, init.dims);
}
