/** The engine's Web Worker: onnxruntime-web (WebGPU bundle, with WASM) behind comlink. */
import * as Comlink from 'comlink';
import * as ort from 'onnxruntime-web/webgpu';
import { Engine } from './engine.ts';
import { decodeImageToRgba, ImageDecodeError } from './image-decode.ts';
import { JobCancelled } from './pipeline.ts';
import { chooseBackend, errorText, type GpuLike, type OrtModule } from './runtime.ts';
import type { EngineWorkerApi, WorkerOutcome } from './worker-api.ts';
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
    if (e instanceof ImageDecodeError) return { ok: false, kind: 'init_image', message: e.message };
    return { ok: false, kind: failKind, message: errorText(e) };
  }
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
  img2img(job, onProgress) {
    cancelRequested = false;
    return outcome(async () => {
      const rgba = await decodeImageToRgba(job.initImage.bytes, job.initImage.mimeType, job.width, job.height);
      const result = await requireEngine().generate(
        { ...job, initImage: { rgba, width: job.width, height: job.height } },
        onProgress,
        () => cancelRequested,
      );
      return Comlink.transfer(result, result.images.map((i) => i.buffer as ArrayBuffer));
    }, 'engine');
  },
  cancel() {
    cancelRequested = true;
  },
};

Comlink.expose(api);
