/** The contract between the main thread and the engine worker (types only; both sides import it). */
import type { BackendChoice, BackendPreference } from './runtime.ts';
import type { LoadedModelInfo } from './engine.ts';
import type { EngineProgress, GenerationResult, Img2ImgJob, InpaintJob, Text2ImgJob } from './jobs.ts';
import type { ModelSource } from '../models/model-source.ts';

/** An image as it crosses to the worker: still encoded, decoded (and resized to the job's size) there. */
export interface EncodedImageBytes {
  bytes: ArrayBuffer;
  mimeType: string;
}

/** A job as it crosses to the worker. */
export type WorkerJob =
  | Text2ImgJob
  | (Omit<Img2ImgJob, 'initImage'> & { initImage: EncodedImageBytes })
  | (Omit<InpaintJob, 'initImage' | 'maskImage'> & { initImage: EncodedImageBytes; maskImage: EncodedImageBytes });

export type WorkerOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; kind: 'init_image' | 'mask_image' | 'cancelled' | 'model' | 'engine' | 'device'; message: string };

export interface EngineWorkerApi {
  init(options: { wasmPaths: string; backend: BackendPreference }): Promise<BackendChoice>;
  loadModel(source: ModelSource, onProgress?: (p: EngineProgress) => void): Promise<WorkerOutcome<LoadedModelInfo>>;
  generate(job: WorkerJob, onProgress?: (p: EngineProgress) => void): Promise<WorkerOutcome<GenerationResult>>;
  /** Stops the running job before its next step. */
  cancel(): void;
}
