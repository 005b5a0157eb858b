/**
 * The local backend: the hosted API's calls answered by the engine worker. Requests are
 * validated here, run one at a time, and answered with the API's own response objects.
 */
import { loadInitImage } from './init-image.ts';
import { errorResponse, fieldError, successResponse, type ApiResponse } from './responses.ts';
import { isErrorResponse, validateImg2ImgRequest, type NormalizedRequest } from './validate-request.ts';
import { randomSeed } from '../engine/random.ts';
import type { BackendChoice } from '../engine/runtime.ts';
import type { EngineProgress, GenerationResult } from '../engine/jobs.ts';
import type { EngineWorkerApi, WorkerOutcome } from '../engine/worker-api.ts';
import type { LoadedModelInfo } from '../engine/engine.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';

export interface LocalClientOptions {
  engine: EngineWorkerApi;
  backend: BackendChoice;
  models: CatalogueEntry[];
  defaultModelId: string;
  fetch?: typeof fetch;
  /** Wraps a callback so it can cross to the worker (Comlink.proxy there; identity in-process). */
  proxy?: <T extends (...args: never[]) => unknown>(fn: T) => T;
  onProgress?: (p: EngineProgress) => void;
  /** Turns PNG bytes into the output URL (blob: URL by default; data: URL when base64 was asked). */
  toUrl?: (png: Uint8Array, base64: boolean) => string;
}

export class LocalClient {
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private loaded: LoadedModelInfo | null = null;

  constructor(private readonly options: LocalClientOptions) {}

  get modelInfo(): LoadedModelInfo | null {
    return this.loaded;
  }

  /** Loads a model ahead of the first request (the page does this on start). */
  async prepare(modelId = this.options.defaultModelId): Promise<ApiResponse | LoadedModelInfo> {
    return this.serial(() => this.ensureModel(modelId));
  }

  img2img(request: unknown): Promise<ApiResponse> {
    const ids = this.options.models.map((m) => m.id);
    const normalized = validateImg2ImgRequest(request, ids);
    if (isErrorResponse(normalized)) return Promise.resolve(normalized);
    const id = this.nextId++;
    return this.serial(() => this.runImg2Img(id, normalized));
  }

  cancel(): void {
    void this.options.engine.cancel();
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async ensureModel(modelId: string): Promise<ApiResponse | LoadedModelInfo> {
    if (this.loaded?.id === modelId) return this.loaded;
    const entry = this.options.models.find((m) => m.id === modelId);
    if (!entry) return fieldError('model_id', `The model id "${modelId}" is not available here.`);
    const progress = this.options.onProgress ? this.wrap(this.options.onProgress) : undefined;
    const outcome = await settle(() => this.options.engine.loadModel(entry.source, progress));
    if (!outcome.ok) return errorResponse(`The model ${modelId} could not be loaded: ${outcome.message}`);
    this.loaded = outcome.value;
    return outcome.value;
  }

  private wrap<T extends (...args: never[]) => unknown>(fn: T): T {
    return this.options.proxy ? this.options.proxy(fn) : fn;
  }

  private async runImg2Img(id: number, r: NormalizedRequest): Promise<ApiResponse> {
    const started = performance.now();
    const modelId = r.modelId ?? this.options.defaultModelId;
    const model = await this.ensureModel(modelId);
    if ('status' in model) return model;
    const image = await loadInitImage(r.initImage, this.options.fetch ?? ((i, init) => fetch(i, init)));
    if ('status' in image) return image;
    const seed = r.seed ?? randomSeed();
    const progress = this.options.onProgress ? this.wrap(this.options.onProgress) : undefined;
    const outcome = await settle(() => this.options.engine.img2img({
      mode: 'img2img',
      prompt: r.promptUsed,
      negativePrompt: r.negativePrompt,
      width: r.width,
      height: r.height,
      samples: r.samples,
      steps: r.steps,
      guidanceScale: r.guidanceScale,
      strength: r.strength,
      seed,
      scheduler: r.scheduler,
      schedulerOverrides: r.schedulerOverrides,
      initImage: image,
    }, progress));
    if (!outcome.ok) {
      if (outcome.kind === 'init_image') return fieldError('init_image', `The init image could not be used: ${outcome.message}.`);
      if (outcome.kind === 'cancelled') return errorResponse('The request was cancelled.');
      return errorResponse(`The generation failed: ${outcome.message}`);
    }
    const result = outcome.value;
    const toUrl = this.options.toUrl ?? defaultToUrl;
    const output = result.images.map((png) => toUrl(png, r.base64));
    return successResponse(id, (performance.now() - started) / 1000, output, this.meta(r, result, model, seed));
  }

  private meta(r: NormalizedRequest, result: GenerationResult, model: LoadedModelInfo, seed: number): Record<string, unknown> {
    const meta: Record<string, unknown> = {
      H: result.height,
      W: result.width,
      guidance_scale: r.guidanceScale,
      model: model.id,
      n_samples: r.samples,
      negative_prompt: r.negativePrompt,
      prompt: r.promptUsed,
      seed,
      seeds: result.seeds,
      steps: r.steps,
      strength: r.strength,
      init_image: r.initImage,
      // Never claim a check that did not run: the local models have no safety checker yet.
      safety_checker: 'no',
      vae: `${model.id}/vae_decoder`,
      file_prefix: crypto.randomUUID(),
      scheduler: result.scheduler,
      enhance_prompt: r.enhancePrompt ? 'yes' : 'no',
      base64: r.base64 ? 'yes' : 'no',
      track_id: r.trackId,
      // Extensions: where and how it ran.
      runtime: 'local',
      backend: model.backend,
      backend_reason: model.backendReason,
      timings: {
        denoise_seconds: round3(result.timings.denoise),
        steps_run: result.timings.stepsRun,
        seconds_per_step: result.timings.stepsRun ? round3(result.timings.denoise / result.timings.stepsRun) : 0,
      },
    };
    if (r.safetyChecker) meta.safety_checker_status = `not run: the model ${model.id} has no safety checker`;
    if (result.promptTruncated) meta.prompt_truncated = `the prompt is longer than the text encoder's 77 tokens and was truncated`;
    return meta;
  }
}

/** A worker call that rejected (the worker died, say) becomes an ordinary failed outcome. */
async function settle<T>(call: () => Promise<WorkerOutcome<T>>): Promise<WorkerOutcome<T>> {
  try {
    return await call();
  } catch (e) {
    return { ok: false, kind: 'engine', message: e instanceof Error ? e.message : String(e) };
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function defaultToUrl(png: Uint8Array, base64: boolean): string {
  if (base64) {
    let binary = '';
    for (let i = 0; i < png.length; i += 0x8000) binary += String.fromCharCode(...png.subarray(i, i + 0x8000));
    return `data:image/png;base64,${btoa(binary)}`;
  }
  return URL.createObjectURL(new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
}
