/** The engine's Web Worker: onnxruntime-web (WebGPU bundle, with WASM) behind comlink. */
import * as Comlink from 'comlink';
import * as ort from 'onnxruntime-web/webgpu';
import { DeviceLostError, Engine } from './engine.ts';
import { decodeImageToRgba, ImageDecodeError } from './image-decode.ts';
import type { GenerationJob } from './jobs.ts';
import { JobCancelled } from './pipeline.ts';
import { chooseBackend, errorText, type GpuLike, type OrtModule } from './runtime.ts';
import type { EngineWorkerApi, WorkerJob, WorkerOutcome } from './worker-api.ts';
import { ModelStore } from '../models/model-store.ts';

let engine: Engine | null = null;
let cancelRequested = false;

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
    if (e instanceof DeviceLostError) return { ok: false, kind: 'device', message: e.message };
    return { ok: false, kind: failKind, message: errorText(e) };
  }
}

/** The job with its images decoded at the job's size; a mask that fails to decode is reported as mask_image. */
async function decodeJobImages(job: WorkerJob): Promise<GenerationJob> {
  if (job.mode === 'text2img') return job;
  const { width, height } = job;
  const init = await decodeImageToRgba(job.initImage.bytes, job.initImage.mimeType, width, height, 'init_image');
  const initImage = { rgba: init, width, height };
  if (job.mode === 'img2img') return { ...job, initImage };
  const mask = await decodeImageToRgba(job.maskImage.bytes, job.maskImage.mimeType, width, height, 'mask_image');
  return { ...job, initImage, maskImage: { rgba: mask, width, height } };
}

const api: EngineWorkerApi = {
  async init({ wasmPaths, backend }) {
    ort.env.wasm.wasmPaths = wasmPaths;
    // ORT warns on every session that shape ops run on the CPU, which is by design; keep real errors.
    ort.env.logLevel = 'error';
    // Threads need cross-origin isolation; without it ORT would fail to start its pool.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    const gpu = (navigator as Navigator & { gpu?: GpuLike }).gpu;
    const choice = await chooseBackend(gpu, backend);
    engine = new Engine(ort as unknown as OrtModule, new ModelStore(), choice);
    return choice;
  },
  loadModel(source, onProgress) {
    return outcome(() => requireEngine().loadModel(source, onProgress), 'model');
  },
  generate(job, onProgress) {
    cancelRequested = false;
    return outcome(async () => {
      const result = await requireEngine().generate(await decodeJobImages(job), onProgress, () => cancelRequested);
      return Comlink.transfer(result, result.images.map((i) => i.buffer as ArrayBuffer));
    }, 'engine');
  },
  cancel() {
    cancelRequested = true;
  },
};

Comlink.expose(api);
