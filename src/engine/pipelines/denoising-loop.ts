/**
 * The denoising loop, shared by every pipeline family (stable-diffusion.ts, stable-diffusion-xl.ts)
 * and every mode, after diffusers' StableDiffusion{,Img2Img,Inpaint}Pipeline and their XL versions.
 * A family only makes the conditioning: the UNet's inputs besides sample and timestep, by input name.
 * The modes differ only in the first latents and in what each step adds: the 9-channel inpainting
 * UNet's extra input channels, or the 4-channel UNet's blend with the known image latents.
 * Classifier-free guidance is one batch-2 UNet call. It sees models only through `DiffusionModels`,
 * so the math is testable without ORT.
 */
import { blendKnownLatents, maskImage, resizeMaskNearest } from '../inpaint-mask.ts';
import { createScheduler, getImg2ImgTimesteps } from '../schedulers/index.ts';
import type { Scheduler, SchedulerConfig, SchedulerRng } from '../schedulers/types.ts';
import type { HostTensor } from '../runtime.ts';
import { chooseLoop, denoiseOnDevice, type DeviceModels, type LoopChoice } from '../device-loop.ts';

/**
 * The UNet's inputs besides `sample` and `timestep`, by input name, batch first: [uncond, cond] under
 * guidance, [cond] without. SD: encoder_hidden_states; SDXL: also text_embeds and time_ids.
 */
export type Conditioning = Record<string, HostTensor>;

/** What the loop needs from the model set; `engine.ts` implements it over ORT sessions. */
export interface DiffusionModels {
  /** sample [B, unetInChannels, h, w] at one timestep with its conditioning -> noise prediction [B, latentChannels, h, w]. */
  predictNoise(sample: HostTensor, timestep: number, conditioning: Conditioning): Promise<Float32Array>;
  /** Image [1, 3, H, W] in [-1, 1] -> the encoder's output: a latent [1, 4, h, w] or distribution parameters [1, 8, h, w]. */
  encodeImage(image: HostTensor): Promise<HostTensor>;
  /** Latents [1, 4, h, w] (already divided by the scaling factor) -> image [1, 3, H, W] in [-1, 1]. */
  decodeLatents(latents: HostTensor): Promise<HostTensor>;
  /** The VAE config's scaling_factor (0.18215 for SD 1.x). */
  readonly scalingFactor: number;
  readonly latentChannels: number;
  /** Pixels per latent along each side: 2 ** (len(vae block_out_channels) - 1), 8 for SD. */
  readonly vaeScaleFactor: number;
  /** The UNet's `sample` channels: latentChannels, or 2 * latentChannels + 1 for inpainting UNets. */
  readonly unetInChannels: number;
  /** The GPU-resident loop's operations (WebGPU); absent: every step runs through the host. */
  readonly device?: DeviceModels | null;
  /** Why there is no device loop, when `device` is absent. */
  readonly hostLoopReason?: string;
}

/** What the job starts from. Images are [3, H, W] in [-1, 1]; the mask is [H * W] of 1 (repaint) / 0 (keep). */
export type GenerationInput =
  | { mode: 'text2img' }
  | { mode: 'img2img'; image: Float32Array; strength: number }
  | { mode: 'inpaint'; image: Float32Array; mask: Float32Array; strength: number };

export interface PipelineParams {
  /** The family's conditioning for this request, batched for guidance as the guidance scale says. */
  conditioning: Conditioning;
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  schedulerName: string;
  schedulerConfig: SchedulerConfig;
  /** Draws the encoders' sample noise, the initial noise and ancestral noise, in diffusers' order. */
  rng: SchedulerRng;
  input: GenerationInput;
}

export interface StepProgress {
  step: number;
  totalSteps: number;
  timestep: number;
  /**
   * The latents after this step, [1, C, h, w] as the UNet sees them (for live previews; do not modify).
   * Null where the device loop left them on the GPU because wantsLatents said no.
   */
  latents: Float32Array | null;
  dims: readonly number[];
  /** Seconds this step took, without what onStep itself spends. */
  seconds: number;
}

export interface LoopHooks {
  onStep?(p: StepProgress): void | Promise<void>;
  /** Which loop runs the job, and why; called once before the first step. */
  onLoop?(choice: LoopChoice): void;
  /** Asked before step `step` (1-based) runs: whether its latents must come back from the GPU for a preview. */
  wantsLatents?(step: number, totalSteps: number): boolean;
  /** Checked before every step so a cancel ends the run within one step. */
  shouldStop?(): boolean;
}

/** What a mode adds to each step of the shared loop. */
export interface StepConditioning {
  /** Channels appended after the scaled latents of every batch item on each UNet call (9-channel inpainting). */
  extraChannels?: HostTensor;
  /** The latents to go on with after step `i` (0-based): the 4-channel inpainting blend. */
  afterStep?(latents: Float32Array, i: number): Float32Array;
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

export interface EncodedLatents {
  /** [1, C, h, w], times the scaling factor. */
  latents: HostTensor;
  /** Whether the encoder gave a distribution, so that encoding drew latent-sized noise from the rng. */
  sampled: boolean;
}

/** Image latents as the UNet sees them: the encoder's latent (sampled if it gives a distribution) × scaling factor. */
export async function encodeImageLatents(models: DiffusionModels, image: Float32Array, width: number, height: number, rng: SchedulerRng): Promise<EncodedLatents> {
  const encoded = await models.encodeImage({ data: image, dims: [1, 3, height, width] });
  const [, channels, h, w] = encoded.dims;
  const sampled = channels === models.latentChannels * 2;
  const latent = sampled ? sampleLatentDistribution(encoded.data as Float32Array, models.latentChannels, rng) : (encoded.data as Float32Array);
  const scaled = new Float32Array(latent.length);
  for (let i = 0; i < latent.length; i++) scaled[i] = latent[i] * models.scalingFactor;
  return { latents: { data: scaled, dims: [1, models.latentChannels, h, w] }, sampled };
}

/** [B, C1, h, w] scaled latents and [1, C2, h, w] extra channels -> [B, C1 + C2, h, w], the extras repeated per batch item. */
function appendChannels(latents: Float32Array, batch: number, extra: HostTensor): Float32Array {
  const perItem = latents.length / batch;
  const extraData = extra.data as Float32Array;
  const out = new Float32Array(latents.length + batch * extraData.length);
  for (let b = 0; b < batch; b++) {
    const base = b * (perItem + extraData.length);
    out.set(latents.subarray(b * perItem, (b + 1) * perItem), base);
    out.set(extraData, base + perItem);
  }
  return out;
}

/** Runs the scheduler loop from `start` over `timesteps`; returns the final latents. */
export async function denoise(
  models: DiffusionModels,
  scheduler: Scheduler,
  timesteps: number[],
  start: HostTensor,
  text: Conditioning,
  guidanceScale: number,
  rng: SchedulerRng,
  hooks: LoopHooks = {},
  conditioning: StepConditioning = {},
): Promise<Float32Array> {
  const guided = usesGuidance(guidanceScale);
  const editsLatents = conditioning.extraChannels !== undefined || conditioning.afterStep !== undefined;
  const choice = chooseLoop(models.device ?? null, models.hostLoopReason ?? 'the models run on the host', scheduler, editsLatents);
  if (choice.mode === 'device') {
    const latents = await denoiseOnDevice(models.device!, scheduler, timesteps, start, text, guidanceScale, guided, rng, {
      // after the text embeddings' upload, which belongs to the image rather than its steps
      onStart: () => hooks.onLoop?.(choice),
      shouldStop: hooks.shouldStop,
      wantsLatents: hooks.wantsLatents,
      cancelled: () => new JobCancelled(),
      onStep: (step, timestep, l, seconds) => hooks.onStep?.({ step, totalSteps: timesteps.length, timestep, latents: l, dims: start.dims, seconds }),
    });
    return finiteLatents(latents, scheduler);
  }
  hooks.onLoop?.(choice);
  const batch = guided ? 2 : 1;
  let latents = start.data as Float32Array;
  const [, channels, h, w] = start.dims;
  const extra = conditioning.extraChannels;
  const inputChannels = channels + (extra ? extra.dims[1] : 0);
  for (let i = 0; i < timesteps.length; i++) {
    if (hooks.shouldStop?.()) throw new JobCancelled();
    const stepStart = performance.now();
    const t = timesteps[i];
    // scale_model_input is elementwise, so scaling one copy equals scaling the guidance batch
    const scaled = scheduler.scaleModelInput(latents, t);
    let input = scaled;
    if (guided) {
      input = new Float32Array(scaled.length * 2);
      input.set(scaled, 0);
      input.set(scaled, scaled.length);
    }
    if (extra) input = appendChannels(input, batch, extra);
    const pred = await models.predictNoise({ data: input, dims: [batch, inputChannels, h, w] }, t, text);
    const noisePred = guided ? combineGuidance(pred, guidanceScale) : pred;
    latents = scheduler.step(noisePred, t, latents, rng).prevSample;
    if (conditioning.afterStep) latents = conditioning.afterStep(latents, i);
    await hooks.onStep?.({ step: i + 1, totalSteps: timesteps.length, timestep: t, latents, dims: start.dims, seconds: (performance.now() - stepStart) / 1000 });
  }
  return finiteLatents(latents, scheduler);
}

/** A NaN would decode to a black image; say what went wrong instead. */
function finiteLatents(latents: Float32Array, scheduler: Scheduler): Float32Array {
  if (!latents.every(Number.isFinite)) throw new Error(`${scheduler.name} produced non-finite latents`);
  return latents;
}

/** Final latents -> image tensor [1, 3, H, W] in [-1, 1]. */
export async function decode(models: DiffusionModels, latents: Float32Array, dims: number[]): Promise<HostTensor> {
  const unscaled = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) unscaled[i] = latents[i] / models.scalingFactor;
  return models.decodeLatents({ data: unscaled, dims });
}

/** How one mode starts: the timesteps to run, the first latents, and what each step adds. */
interface Start {
  timesteps: number[];
  latents: HostTensor;
  conditioning: StepConditioning;
}

function latentDims(models: DiffusionModels, width: number, height: number): number[] {
  const f = models.vaeScaleFactor;
  return [1, models.latentChannels, Math.floor(height / f), Math.floor(width / f)];
}

/** diffusers' prepare_latents for pure noise: randn(shape) × init_noise_sigma (read after set_timesteps). */
function scaledNoise(noise: Float32Array, scheduler: Scheduler): Float32Array {
  // torch multiplies a float32 tensor by the scalar in float32
  const sigma = Math.fround(scheduler.initNoiseSigma);
  const out = new Float32Array(noise.length);
  for (let i = 0; i < noise.length; i++) out[i] = noise[i] * sigma;
  return out;
}

function isInpaintingUNet(models: DiffusionModels): boolean {
  return models.unetInChannels === 2 * models.latentChannels + 1;
}

function requirePlainUNet(models: DiffusionModels, mode: string): void {
  if (models.unetInChannels !== models.latentChannels) {
    throw new Error(
      `this model's UNet takes ${models.unetInChannels} input channels (an inpainting model); ${mode} needs a ${models.latentChannels}-channel UNet`,
    );
  }
}

/** StableDiffusionPipeline: all timesteps from noise × init_noise_sigma; no begin index, as diffusers sets none. */
async function startText2Img(models: DiffusionModels, scheduler: Scheduler, p: PipelineParams): Promise<Start> {
  requirePlainUNet(models, 'text2img');
  scheduler.setTimesteps(p.steps);
  const dims = latentDims(models, p.width, p.height);
  const noise = p.rng.randn(dims.reduce((a, b) => a * b, 1));
  return { timesteps: scheduler.timesteps.slice(), latents: { data: scaledNoise(noise, scheduler), dims }, conditioning: {} };
}

/** StableDiffusionImg2ImgPipeline: the image latents noised at the first timestep that strength leaves. */
async function startImg2Img(models: DiffusionModels, scheduler: Scheduler, p: PipelineParams, image: Float32Array, strength: number): Promise<Start> {
  requirePlainUNet(models, 'img2img');
  const { timesteps, latentTimestep } = getImg2ImgTimesteps(scheduler, p.steps, strength);
  const init = (await encodeImageLatents(models, image, p.width, p.height, p.rng)).latents;
  const noise = p.rng.randn(init.data.length);
  const noisy = scheduler.addNoise(init.data as Float32Array, noise, latentTimestep);
  return { timesteps, latents: { data: noisy, dims: init.dims }, conditioning: {} };
}

/**
 * StableDiffusionInpaintPipeline. The rng draws as diffusers' do: the image latents' encoder
 * sample (when the image is encoded: always for a 4-channel UNet, below full strength for a
 * 9-channel one), then the noise, then the masked image latents' encoder sample.
 */
async function startInpaint(
  models: DiffusionModels,
  scheduler: Scheduler,
  p: PipelineParams,
  input: Extract<GenerationInput, { mode: 'inpaint' }>,
): Promise<Start> {
  const nineChannel = isInpaintingUNet(models);
  if (!nineChannel && models.unetInChannels !== models.latentChannels) {
    throw new Error(`this model's UNet takes ${models.unetInChannels} input channels; inpainting needs ${models.latentChannels} or ${2 * models.latentChannels + 1}`);
  }
  const { timesteps, latentTimestep } = getImg2ImgTimesteps(scheduler, p.steps, input.strength);
  const isStrengthMax = input.strength === 1;
  const image = !nineChannel || !isStrengthMax ? await encodeImageLatents(models, input.image, p.width, p.height, p.rng) : null;
  const dims = image?.latents.dims ?? latentDims(models, p.width, p.height);
  const [, , h, w] = dims;
  const noise = p.rng.randn(dims.reduce((a, b) => a * b, 1));
  const first = isStrengthMax ? scaledNoise(noise, scheduler) : scheduler.addNoise(image!.latents.data as Float32Array, noise, latentTimestep);

  const latentMask = resizeMaskNearest(input.mask, p.width, p.height, w, h);
  const masked = maskImage(input.image, input.mask);
  if (nineChannel) {
    const maskedLatents = (await encodeImageLatents(models, masked, p.width, p.height, p.rng)).latents.data as Float32Array;
    const extra = new Float32Array(latentMask.length + maskedLatents.length);
    extra.set(latentMask, 0);
    extra.set(maskedLatents, latentMask.length);
    return { timesteps, latents: { data: first, dims }, conditioning: { extraChannels: { data: extra, dims: [1, 1 + models.latentChannels, h, w] } } };
  }

  // diffusers encodes the masked image for a 4-channel UNet too and never uses the result; only
  // the rng draw it makes matters (later ancestral noise follows it), so draw without encoding.
  if (image!.sampled) p.rng.randn(noise.length);
  const known = image!.latents.data as Float32Array;
  // add_noise after step i uses the scheduler's step index (begin + i + 1) in diffusers. A scheduler
  // that has never stepped, with its begin index there, gives that level for every scheduler
  // (ours and diffusers'), including IPNDM, whose own addNoise ignores the step index.
  const noiser = createScheduler(p.schedulerName, p.schedulerConfig);
  noiser.setTimesteps(p.steps);
  const begin = scheduler.timesteps.length - timesteps.length;
  return {
    timesteps,
    latents: { data: first, dims },
    conditioning: {
      afterStep(latents, i) {
        let proper = known;
        if (i < timesteps.length - 1) {
          noiser.setBeginIndex(begin + i + 1);
          proper = noiser.addNoise(known, noise, timesteps[i + 1]);
        }
        return blendKnownLatents(latents, proper, latentMask);
      },
    },
  };
}

/** One image of any mode, batch 1: start latents, the loop, the VAE decoder (the family encoded the prompt). */
export async function runPipeline(models: DiffusionModels, p: PipelineParams, hooks: LoopHooks = {}): Promise<HostTensor> {
  const text = p.conditioning;
  const scheduler = createScheduler(p.schedulerName, p.schedulerConfig);
  const input = p.input;
  const start =
    input.mode === 'text2img' ? await startText2Img(models, scheduler, p)
    : input.mode === 'img2img' ? await startImg2Img(models, scheduler, p, input.image, input.strength)
    : await startInpaint(models, scheduler, p, input);
  const latents = await denoise(models, scheduler, start.timesteps, start.latents, text, p.guidanceScale, p.rng, hooks, start.conditioning);
  return decode(models, latents, start.latents.dims);
}
