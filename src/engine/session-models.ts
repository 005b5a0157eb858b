/**
 * The pipeline's views of a model's ORT sessions: the denoising loop's DiffusionModels (host and
 * GPU-resident), and the families' text encoders. Shapes come from the sessions, never from the
 * caller's assumptions: an export that fixes its batch gets its batch (split, or filled by
 * repeating the last item), an export that declares a scalar timestep gets a scalar.
 */
import type { Conditioning, DiffusionModels } from './pipelines/denoising-loop.ts';
import type { TextEncoder } from './pipelines/prompt-encoding.ts';
import type { DeviceConditioning, DeviceModels, DeviceTensor } from './device-loop.ts';
import { isConstant, markConstant, type GpuTensor, type HostTensor, type ModelSession } from './runtime.ts';
import { concatBatch, sliceBatch } from './tensor-batch.ts';
import type { ClipTokenizer } from './tokenizer.ts';

/**
 * Runs `run` over a batch of `batch` items on a graph that fixes its batch to `fixed`: in chunks
 * of `fixed`, the last one filled by repeating its last item, keeping only the real items' outputs.
 * A free batch (null) or a matching one runs once.
 */
export async function inFixedBatches(
  fixed: number | null,
  batch: number,
  feeds: Record<string, HostTensor>,
  run: (feeds: Record<string, HostTensor>, batch: number) => Promise<Record<string, HostTensor>>,
): Promise<Record<string, HostTensor>> {
  if (fixed === null || fixed === batch) return run(feeds, batch);
  const parts: Record<string, HostTensor[]> = {};
  for (let start = 0; start < batch; start += fixed) {
    const count = Math.min(fixed, batch - start);
    const chunk: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(feeds)) chunk[name] = batchChunk(t, start, fixed, count);
    const out = await run(chunk, fixed);
    for (const [name, t] of Object.entries(out)) (parts[name] ??= []).push(...Array.from({ length: count }, (_, i) => sliceBatch(t, i)));
  }
  return Object.fromEntries(Object.entries(parts).map(([name, p]) => [name, concatBatch(p)]));
}

/** A constant tensor's chunks, kept so that they stay the same (constant) objects from step to step. */
const constantChunks = new WeakMap<HostTensor, Map<string, HostTensor>>();

/** Items start.. of `t` as a batch of `fixed`, the last of `count` real ones repeated to fill it. */
function batchChunk(t: HostTensor, start: number, fixed: number, count: number): HostTensor {
  const make = () => concatBatch(Array.from({ length: fixed }, (_, i) => sliceBatch(t, start + Math.min(i, count - 1))));
  if (!isConstant(t)) return make();
  let chunks = constantChunks.get(t);
  if (!chunks) constantChunks.set(t, (chunks = new Map()));
  const key = `${start}/${fixed}/${count}`;
  let chunk = chunks.get(key);
  if (!chunk) {
    chunk = make();
    markConstant({ chunk });
    chunks.set(key, chunk);
  }
  return chunk;
}

/** The timestep as the UNet declares it: a scalar [], a fixed [n], or one per batch item. */
export function timestepFeed(unet: ModelSession, timestep: number, batch: number): HostTensor {
  const shape = unet.input('timestep').shape;
  if (shape.length === 0) return { data: Float32Array.of(timestep), dims: [] };
  const n = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : batch;
  return { data: new Float32Array(n).fill(timestep), dims: [n] };
}

/** The conditioning inputs this UNet has (an SD UNet ignores nothing it is given: unknown names are an error). */
function unetConditioning<T>(unet: ModelSession, conditioning: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, t] of Object.entries(conditioning)) {
    if (!unet.hasInput(name)) throw new Error(`the UNet has no input "${name}" (it has ${unet.inputs.map((i) => i.name).join(', ')})`);
    out[name] = t;
  }
  return out;
}

/** A text encoder session as the families use it: token ids in, every output by name out. */
export function sessionTextEncoder(session: ModelSession, tokenizer: ClipTokenizer): TextEncoder {
  return {
    tokenizer,
    firstOutput: session.outputs[0].name,
    async run(ids) {
      const length = ids[0].length;
      const data = new Int32Array(ids.length * length);
      ids.forEach((x, i) => data.set(x, i * length));
      return inFixedBatches(session.fixedBatch('input_ids'), ids.length, { input_ids: { data, dims: [ids.length, length] } }, (f) => session.run(f));
    },
  };
}

export interface UNetModels {
  unet: ModelSession;
  vaeEncoder?: ModelSession;
  vaeDecoder: ModelSession;
  scalingFactor: number;
  latentChannels: number;
  vaeScaleFactor: number;
  unetInChannels: number;
  /** The naive baseline: guidance as two batch-1 UNet calls, as a batch-1 export must. */
  naive: boolean;
  device: DeviceModels | null;
  hostLoopReason?: string;
  modelId: string;
}

export function diffusionModels(m: UNetModels): DiffusionModels {
  const { unet, vaeEncoder, vaeDecoder } = m;
  const first = (out: Record<string, HostTensor>, s: ModelSession) => out[s.outputs[0].name];
  const unetBatch = m.naive ? 1 : unet.fixedBatch('sample');
  return {
    device: m.device,
    hostLoopReason: m.hostLoopReason,
    scalingFactor: m.scalingFactor,
    latentChannels: m.latentChannels,
    vaeScaleFactor: m.vaeScaleFactor,
    unetInChannels: m.unetInChannels,
    async predictNoise(sample, timestep, conditioning: Conditioning) {
      const feeds = { sample, ...unetConditioning(unet, conditioning) };
      const out = await inFixedBatches(unetBatch, sample.dims[0], feeds, (f, b) => unet.run({ ...f, timestep: timestepFeed(unet, timestep, b) }));
      return first(out, unet).data as Float32Array;
    },
    async encodeImage(image) {
      if (!vaeEncoder) throw new Error(`the model ${m.modelId} has no VAE encoder, so it cannot take an init image (img2img and inpaint); use text2img or another model`);
      return first(await vaeEncoder.run({ [vaeEncoder.inputs[0].name]: image }), vaeEncoder);
    },
    async decodeLatents(latents) {
      return first(await vaeDecoder.run({ [vaeDecoder.inputs[0].name]: latents }), vaeDecoder);
    },
  };
}

export interface DeviceSessions {
  unet: ModelSession;
  latentStep: ModelSession;
  latentStepRead: ModelSession;
  toDevice: ModelSession;
}

/** The device loop's operations over the UNet (outputs on the GPU) and the helper sessions. */
export function deviceModels(s: DeviceSessions): DeviceModels {
  const { unet, latentStep, latentStepRead, toDevice } = s;
  // The device tensors the loop hands back are the ORT tensors these sessions made.
  const ortTensor = (t: HostTensor | DeviceTensor) => t as HostTensor | GpuTensor;
  return {
    async upload(conditioning) {
      const out: DeviceConditioning = {};
      for (const [name, t] of Object.entries(unetConditioning(unet, conditioning))) {
        // the token embeddings are worth a GPU buffer; SDXL's pooled embedding and six time ids are a few KB a step
        out[name] = t.dims.length === 3 ? (await toDevice.runMixed({ x: t })).y : t;
      }
      return out;
    },
    async predictNoise(sample, timestep, conditioning) {
      const b = sample.dims[0];
      const feeds: Record<string, HostTensor | GpuTensor> = { sample: ortTensor(sample), timestep: timestepFeed(unet, timestep, b) };
      for (const [name, t] of Object.entries(conditioning)) feeds[name] = ortTensor(t);
      const out = await unet.runMixed(feeds);
      return out[unet.outputs[0].name];
    },
    async step({ pred, guidance, sample, noise, coefficients, read }) {
      const session = read ? latentStepRead : latentStep;
      const out = await session.runMixed({ noise_pred: ortTensor(pred), guidance, sample: ortTensor(sample), noise, coefficients: { data: coefficients, dims: [4] } });
      if (!read) return { latents: out.latents, next: out.next_sample };
      const latents = out.latents.data as Float32Array;
      out.latents.dispose();
      return { latents, next: out.next_sample };
    },
  };
}
