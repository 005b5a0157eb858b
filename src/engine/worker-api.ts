/** The contract between the main thread and the engine worker (types only; both sides import it). */
import type { BackendChoice, BackendPreference } from './runtime.ts';
import type { LoadedModelInfo } from './engine.ts';
import type { EngineProgress, GenerationResult, Img2ImgJob } from './jobs.ts';
import type { ModelSource } from '../models/model-source.ts';

/** A job as it crosses to the worker: the init image still encoded, decoded there. */
export type WorkerImg2ImgJob = Omit<Img2ImgJob, 'initImage'> & { initImage: { bytes: ArrayBuffer; mimeType: string } };

export type WorkerOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; kind: 'init_image' | 'cancelled' | 'model' | 'engine'; message: string };

export interface EngineWorkerApi {
  init(options: { wasmPaths: string; backend: BackendPreference }): Promise<BackendChoice>;
  loadModel(source: ModelSource, onProgress?: (p: EngineProgress) => void): Promise<WorkerOutcome<LoadedModelInfo>>;
  img2img(job: WorkerImg2ImgJob, onProgress?: (p: EngineProgress) => void): Promise<WorkerOutcome<GenerationResult>>;
  /** Stops the running job before its next step. */
  cancel(): void;
}
