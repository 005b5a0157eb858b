/** The contract between the main thread and the engine worker (its types, and the one helper both sides use). */
import type { BackendChoice, BackendPreference } from './runtime.ts';
import type { LoadedModelInfo, LoopPreference } from './engine.ts';
import type { EngineProgress, GenerationResult, Img2ImgJob, InpaintJob, ProgressSink, Text2ImgJob } from './jobs.ts';
import type { DownloadProgress, ModelSource } from '../models/model-source.ts';
import type { CachedModel, ModelStatus } from '../models/model-store.ts';

/** An image as it crosses to the worker: still encoded, decoded (and resized to the job's size) there. */
export interface EncodedImageBytes {
  bytes: ArrayBuffer;
  mimeType: string;
}

/** A job as it crosses to the worker. */
export type WorkerJob =
  | Text2ImgJob
  | (Omit<Img2ImgJob, 'initImage'> & { initImage: EncodedImageBytes })
  | (Omit<InpaintJob, 'initImage' | 'maskImage' | 'overlay'> & { initImage: EncodedImageBytes; maskImage: EncodedImageBytes })
  | OutpaintWorkerJob;

/**
 * Outpainting: the image (drawn at its own size, or scaled down to fit) is centred on a canvas of
 * the job's width x height and the rest is generated (outpaint-canvas.ts); it runs as inpainting.
 */
export type OutpaintWorkerJob = Omit<InpaintJob, 'mode' | 'strength' | 'initImage' | 'maskImage' | 'overlay'> & {
  mode: 'outpaint';
  initImage: EncodedImageBytes;
  /** Pixels of the image's edge, where it meets new area, that are repainted and blended. */
  overlap: number;
};

/**
 * A generation as it comes back from the worker: the job's encoded images travel there and back
 * (moved, not copied), so that the page still has them for the history.
 */
export type WorkerGeneration = GenerationResult & { returnedImages?: { initImage?: EncodedImageBytes; maskImage?: EncodedImageBytes } };

/** The buffers of a job's encoded images, once each: what moves to the worker with it and back. */
export function jobImageBuffers(job: WorkerJob): ArrayBuffer[] {
  if (job.mode === 'text2img') return [];
  const buffers = job.mode === 'inpaint' ? [job.initImage.bytes, job.maskImage.bytes] : [job.initImage.bytes];
  return [...new Set(buffers)];
}

/** An image job that is no diffusion run: one image in, one PNG out. */
export type ImageEditJob =
  /** ESRGAN super resolution by 2, 3 or 4, tiled (super-resolution.ts). */
  | { kind: 'upscale'; image: EncodedImageBytes; scale: 2 | 3 | 4 }
  /** The hosted base64_crop: with crop, the centred square, at most 1024 px, sides a multiple of 8. */
  | { kind: 'crop'; image: EncodedImageBytes; crop: boolean };

export interface ImageEditResult {
  png: Uint8Array;
  width: number;
  height: number;
  /** The image's own size, as decoded. */
  inputWidth: number;
  inputHeight: number;
  seconds: number;
  /** The job's encoded image, moved back to the page (as WorkerGeneration does). */
  returnedImage: EncodedImageBytes;
}

export type WorkerOutcome<T> =
  | { ok: true; value: T }
  | {
    ok: false;
    kind: 'init_image' | 'mask_image' | 'cancelled' | 'model' | 'engine' | 'device'
      | 'quota' | 'integrity' | 'download' | 'paused' | 'corrupt' | 'broken' | 'in_use';
    message: string;
  };

export interface StorageInfo {
  usage: number | null;
  quota: number | null;
  persisted: boolean;
}

/** Generation: what the local client needs. */
export interface EngineGenerationApi {
  /**
   * previewModel: the TAESD model set for live previews (absent: the linear approximation).
   * helpersUrl: the folder of the engine's helper graphs (engine/). loop: which denoising loop (see Engine).
   */
  init(options: {
    wasmPaths: string;
    backend: BackendPreference;
    previewModel?: ModelSource;
    /** The super-resolution graphs (model set "esrgan"); absent: no upscaling. */
    upscalerModel?: ModelSource;
    helpersUrl?: string;
    loop?: LoopPreference;
  }): Promise<BackendChoice>;
  loadModel(source: ModelSource, onProgress?: (p: EngineProgress) => void): Promise<WorkerOutcome<LoadedModelInfo>>;
  generate(job: WorkerJob, onProgress?: ProgressSink): Promise<WorkerOutcome<WorkerGeneration>>;
  /** Upscales or crops an image; progress reports each upscaled tile, and its answer `true` cancels. */
  editImage(job: ImageEditJob, onProgress?: ProgressSink): Promise<WorkerOutcome<ImageEditResult>>;
  /** Stops the running job before its next step (the progress answer is what guarantees the page's view of it). */
  cancel(): void;
}

/** Model files: downloads, status, storage; what the model manager needs. */
export interface ModelManagementApi {
  /** Downloads every file of the model into IndexedDB (resuming what is stored). */
  downloadModel(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<WorkerOutcome<void>>;
  /** Pauses the model's download; stored chunks stay, and the next download resumes. */
  pauseDownload(modelId: string): void;
  /** Stops the model's download and discards its incomplete files. */
  cancelDownload(source: ModelSource): Promise<void>;
  modelStatus(source: ModelSource): Promise<ModelStatus>;
  listCachedModels(): Promise<CachedModel[]>;
  /** Removes a model's files; refused while a job runs on it. */
  deleteModel(modelId: string): Promise<WorkerOutcome<void>>;
  storage(): Promise<StorageInfo>;
}

export interface EngineWorkerApi extends EngineGenerationApi, ModelManagementApi {}
