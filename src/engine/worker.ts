/** The engine's Web Worker: onnxruntime-web (WebGPU bundle, with WASM) behind comlink. */
import * as Comlink from 'comlink';
import * as ort from 'onnxruntime-web/webgpu';
import { DeviceLostError, Engine } from './engine.ts';
import { decodeImageFitted, decodeImageToRgba, ImageDecodeError } from './image-decode.ts';
import { fittedSize, NothingToOutpaintError, outpaintCanvas } from './outpaint-canvas.ts';
import { cropRegion } from './image-crop.ts';
import { encodeRgbaPng } from './png.ts';
import { MAX_UPSCALE_INPUT } from './super-resolution.ts';
import type { EngineProgress, GenerationJob } from './jobs.ts';
import { JobCancelled } from './pipelines/denoising-loop.ts';
import { chooseBackend, errorText, type GpuLike, type OrtModule } from './runtime.ts';
import { jobImageBuffers, type EngineWorkerApi, type ImageEditResult, type WorkerGeneration, type WorkerJob, type WorkerOutcome } from './worker-api.ts';
import {
  BrokenModelFileError, CorruptCacheError, DownloadError, DownloadPaused, IntegrityError, ModelStore, QuotaError,
} from '../models/model-store.ts';

let engine: Engine | null = null;
let store: ModelStore | null = null;
let cancelRequested = false;
/** The model a generation is running on: it cannot be deleted meanwhile. */
let busyModel: string | null = null;
const downloads = new Map<string, AbortController>();

function requireStore(): ModelStore {
  if (!store) throw new Error('the engine is not initialised');
  return store;
}

/** A model-store failure as an outcome the API layer can word for the user. */
function storeFailure(e: unknown): WorkerOutcome<never> {
  const message = errorText(e);
  if (e instanceof QuotaError) return { ok: false, kind: 'quota', message };
  if (e instanceof IntegrityError) return { ok: false, kind: 'integrity', message };
  if (e instanceof CorruptCacheError) return { ok: false, kind: 'corrupt', message };
  if (e instanceof BrokenModelFileError) return { ok: false, kind: 'broken', message };
  if (e instanceof DownloadPaused) return { ok: false, kind: 'paused', message };
  if (e instanceof DownloadError) return { ok: false, kind: 'download', message };
  return { ok: false, kind: 'model', message };
}

/** Each helper graph is fetched once per worker (latent-step backs two sessions, and reloading a model asks again). */
function memoized(load: (file: string) => Promise<Uint8Array>): (file: string) => Promise<Uint8Array> {
  const cache = new Map<string, Promise<Uint8Array>>();
  return (file) => {
    let p = cache.get(file);
    if (!p) {
      p = load(file);
      cache.set(file, p);
      // a failed fetch is not remembered: the next load tries again
      p.catch(() => cache.delete(file));
    }
    return p;
  };
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

function requireEngine(): Engine {
  if (!engine) throw new Error('the engine is not initialised');
  return engine;
}

async function outcome<T>(work: () => Promise<T>, failKind: 'model' | 'engine'): Promise<WorkerOutcome<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (e) {
    if (e instanceof JobCancelled) return { ok: false, kind: 'cancelled', message: e.message };
    if (e instanceof ImageDecodeError) return { ok: false, kind: e.field, message: e.message };
    if (e instanceof NothingToOutpaintError) return { ok: false, kind: 'init_image', message: e.message };
    if (e instanceof DeviceLostError) return { ok: false, kind: 'device', message: e.message };
    return { ok: false, kind: failKind, message: errorText(e) };
  }
}

/** The job with its images decoded at the job's size; a mask that fails to decode is reported as mask_image. */
async function decodeJobImages(job: WorkerJob): Promise<GenerationJob> {
  if (job.mode === 'text2img') return job;
  if (job.mode === 'outpaint') {
    const { width, height } = job;
    const image = await decodeImageFitted(job.initImage.bytes, job.initImage.mimeType, (w, h) => fittedSize(w, h, width, height), 'init_image');
    const { overlap, initImage: _, ...rest } = job;
    const canvas = outpaintCanvas(image, width, height, overlap);
    return { ...rest, mode: 'inpaint', strength: 1, initImage: canvas.initImage, maskImage: canvas.maskImage, overlay: canvas.overlay };
  }
  const { width, height } = job;
  const init = await decodeImageToRgba(job.initImage.bytes, job.initImage.mimeType, width, height, 'init_image');
  const initImage = { rgba: init, width, height };
  if (job.mode === 'img2img') return { ...job, initImage };
  const mask = await decodeImageToRgba(job.maskImage.bytes, job.maskImage.mimeType, width, height, 'mask_image');
  return { ...job, initImage, maskImage: { rgba: mask, width, height } };
}

const api: EngineWorkerApi = {
  async init({ wasmPaths, backend, previewModel, upscalerModel, helpersUrl, loop }) {
    ort.env.wasm.wasmPaths = wasmPaths;
    // ORT warns on every session that shape ops run on the CPU, which is by design; keep real errors.
    ort.env.logLevel = 'error';
    // Threads need cross-origin isolation; without it ORT would fail to start its pool.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    const gpu = (navigator as Navigator & { gpu?: GpuLike }).gpu;
    const choice = await chooseBackend(gpu, backend);
    store = new ModelStore();
    engine = new Engine(ort as unknown as OrtModule, store, choice, {
      loop,
      helperGraph: helpersUrl ? memoized((file) => fetchBytes(new URL(file, helpersUrl).href)) : undefined,
    });
    engine.setPreviewModel(previewModel ?? null);
    engine.setUpscalerModel(upscalerModel ?? null);
    return choice;
  },
  async loadModel(source, onProgress) {
    try {
      return { ok: true, value: await requireEngine().loadModel(source, onProgress) };
    } catch (e) {
      return storeFailure(e);
    }
  },
  generate(job, onProgress) {
    cancelRequested = false;
    busyModel = engine?.loadedModelId ?? null;
    return outcome(async () => {
      // preview pixels move to the page rather than being copied
      const progress = onProgress && ((p: EngineProgress) => onProgress(p.phase === 'denoise' && p.preview ? Comlink.transfer(p, [p.preview.rgba.buffer]) : p));
      const result = await requireEngine().generate(await decodeJobImages(job), progress, () => cancelRequested);
      const returnedImages = job.mode === 'text2img' ? undefined : { initImage: job.initImage, maskImage: job.mode === 'inpaint' ? job.maskImage : undefined };
      const value: WorkerGeneration = { ...result, returnedImages };
      return Comlink.transfer(value, [...result.images.map((i) => i.buffer as ArrayBuffer), ...jobImageBuffers(job)]);
    }, 'engine').finally(() => {
      busyModel = null;
    });
  },
  editImage(job, onProgress) {
    cancelRequested = false;
    return outcome(async () => {
      const started = performance.now();
      const fit = (w: number, h: number) => (job.kind === 'crop' ? cropRegion(w, h, job.crop) : { width: w, height: h });
      const image = await decodeImageFitted(job.image.bytes, job.image.mimeType, fit, 'init_image');
      let png: Uint8Array;
      let size = { width: image.width, height: image.height };
      if (job.kind === 'crop') {
        png = encodeRgbaPng(image.rgba, image.width, image.height);
      } else {
        if (Math.max(image.width, image.height) > MAX_UPSCALE_INPUT) {
          throw new ImageDecodeError(`it is ${image.width}x${image.height}; the upscaler takes images up to ${MAX_UPSCALE_INPUT} px on a side`, 'init_image');
        }
        const upscaled = await requireEngine().upscale(image, job.scale, onProgress, () => cancelRequested);
        png = encodeRgbaPng(upscaled.data, upscaled.width, upscaled.height);
        size = { width: upscaled.width, height: upscaled.height };
      }
      const value: ImageEditResult = {
        png, ...size, inputWidth: image.sourceWidth, inputHeight: image.sourceHeight, seconds: (performance.now() - started) / 1000, returnedImage: job.image,
      };
      return Comlink.transfer(value, [png.buffer as ArrayBuffer, job.image.bytes]);
    }, 'engine');
  },
  cancel() {
    cancelRequested = true;
  },
  async downloadModel(source, onProgress) {
    downloads.get(source.id)?.abort();
    const controller = new AbortController();
    downloads.set(source.id, controller);
    try {
      await requireStore().download(source, { onProgress, signal: controller.signal });
      return { ok: true, value: undefined };
    } catch (e) {
      return storeFailure(e);
    } finally {
      if (downloads.get(source.id) === controller) downloads.delete(source.id);
    }
  },
  pauseDownload(modelId) {
    downloads.get(modelId)?.abort();
  },
  async cancelDownload(source) {
    await requireStore().cancel(source);
  },
  modelStatus(source) {
    return requireStore().status(source);
  },
  listCachedModels() {
    return requireStore().listModels();
  },
  async deleteModel(modelId) {
    if (busyModel === modelId) return { ok: false, kind: 'in_use', message: `${modelId} is generating right now; cancel the job or wait, then delete it.` };
    // A loaded but idle model is unloaded first, so its sessions do not outlive its files.
    if (engine?.loadedModelId === modelId) await engine.unload();
    await requireStore().deleteModel(modelId);
    return { ok: true, value: undefined };
  },
  async storage() {
    const s = navigator.storage;
    const estimate = s?.estimate ? await s.estimate() : {};
    return { usage: estimate.usage ?? null, quota: estimate.quota ?? null, persisted: s?.persisted ? await s.persisted() : false };
  },
};

Comlink.expose(api);
