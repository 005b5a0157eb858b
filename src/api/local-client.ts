/**
 * The local backend: the hosted API's calls answered by the engine worker. Requests are validated
 * here, queued (one runs at a time, in arrival order), answered with the API's own response
 * objects, kept in IndexedDB history for fetch(id), and reported to their webhook.
 */
import { HistoryStore, toResponse, type HistoryRecord, type StoredImage } from './history-store.ts';
import { imageReference, type ImageField } from './image-reference.ts';
import { ImageFetchAborted, loadInitImage, type EncodedImage } from './init-image.ts';
import { snapshotRequest } from './request-snapshot.ts';
import { JobCancelledError, JobQueue, type JobSignal } from './job-queue.ts';
import {
  errorResponse, fieldError, processingResponse, successResponse,
  type ApiResponse, type ErrorResponse, type FailedResponse, type FetchResponse, type GenerationResponse, type ProcessingResponse, type SuccessResponse, type SystemLoadResponse,
} from './responses.ts';
import { isErrorResponse, validateRequest, type GenerationCall, type NormalizedRequest } from './validate-request.ts';
import { LOCAL_UPSCALER_ID, validateBase64Crop, validateSuperResolution, type SuperResolutionRequest, type UpscaleFactor } from './validate-image-request.ts';
import { postWebhook, webhookPayload } from './webhook.ts';
import type { LocalHandlers } from './endpoints.ts';
import { randomSeed } from '../engine/random.ts';
import { unetCallsPerImage } from '../engine/schedulers/index.ts';
import type { BackendChoice } from '../engine/runtime.ts';
import type { EngineProgress, GenerationResult } from '../engine/jobs.ts';
import type { LoopStats } from '../engine/loop-stats.ts';
import { jobImageBuffers, type EngineGenerationApi, type ImageEditJob, type ImageEditResult, type WorkerGeneration, type WorkerJob, type WorkerOutcome } from '../engine/worker-api.ts';
import type { LoadedModelInfo } from '../engine/engine.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';
import { limitRefusal, type ModelLimits } from '../models/model-descriptor.ts';

export interface LocalClientOptions {
  engine: EngineGenerationApi;
  backend: BackendChoice;
  models: CatalogueEntry[];
  defaultModelId: string;
  fetch?: typeof fetch;
  /** Wraps a callback so it can cross to the worker (Comlink.proxy there; identity in-process). */
  proxy?: <T extends (...args: never[]) => unknown>(fn: T) => T;
  /** Marks buffers to move to the worker with a value rather than be copied (Comlink.transfer there; none in-process). */
  transfer?: <T>(value: T, buffers: ArrayBuffer[]) => T;
  /** Progress of model loads (id null) and of the running request. */
  onProgress?: (p: EngineProgress & { id: number | null }) => void;
  /** Turns PNG bytes into the output URL (blob: URL by default; data: URL when base64 was asked). */
  toUrl?: (png: Uint8Array, base64: boolean) => string;
  /** Finished results for fetch(id) across reloads; by default IndexedDB where there is one, else none. */
  history?: HistoryStore | null;
  /** Delivery of webhooks (tests inject a recorder). */
  postWebhook?: typeof postWebhook;
  /** Limit for fetching an init or mask image URL (default IMAGE_FETCH_TIMEOUT_MS). */
  imageTimeoutMs?: number;
  /**
   * Whether the page that accepted a job (its owner id) is still open, for jobs found unfinished in
   * the history after a reload. Default: Web Locks, where each page holds a lock named by its id.
   */
  isPageAlive?: (owner: string) => Promise<boolean>;
}

/** Every client holds a Web Lock under this prefix plus its page id for as long as it lives. */
const PAGE_LOCK_PREFIX = 'sdapi-page:';
export const CLOSED_WHILE_RUNNING = 'The page was closed while this request ran, so it did not finish. Send it again.';

/** Responses that failed because the GPU was lost or out of memory: auto mode may retry them remotely. */
const deviceFailures = new WeakSet<object>();
export function isDeviceFailure(response: unknown): boolean {
  return typeof response === 'object' && response !== null && deviceFailures.has(response);
}

interface JobOutput {
  response: SuccessResponse | ErrorResponse;
  pngs: Uint8Array[];
  /** The request's images as fetched, so history can keep those given inline. */
  inputs?: Partial<Record<ImageField, StoredImage>>;
}

export class LocalClient {
  private engineChain: Promise<unknown> = Promise.resolve();
  private counter = 1;
  private loaded: LoadedModelInfo | null = null;
  private readonly jobs = new JobQueue();
  private readonly history: HistoryStore | null;
  /** What a processing answer says of each accepted job, until it finishes. */
  private readonly processingMeta = new Map<number, Record<string, unknown>>();
  private readonly urlCache = new Map<number, FetchResponse>();
  /** Each accepted job until its record is stored: fetch(id) waits for one that left the queue. */
  private readonly finishing = new Map<number, Promise<unknown>>();
  private runningId: number | null = null;
  /** The running job's signal: a step's progress is answered with whether it has been cancelled. */
  private runningSignal: JobSignal | null = null;
  /** Model loads whose result has not come back yet. */
  private loading = 0;
  /** What each model loaded so far allows, as its graphs declare it (more exact than the catalogue's word). */
  private readonly limits = new Map<string, ModelLimits>();
  private readonly progress: ((p: EngineProgress) => boolean) | undefined;
  /** This page's id, stored with each job it accepts. */
  private readonly pageId = crypto.randomUUID();

  constructor(private readonly options: LocalClientOptions) {
    this.history = options.history !== undefined ? options.history : typeof indexedDB !== 'undefined' ? new HistoryStore() : null;
    holdPageLock(this.pageId);
    // One callback for the worker's whole life; it tags progress with the running job's id.
    // Progress travels through its own message port (a comlink proxy), results through the worker's,
    // so the last events of a load or a job can arrive after its result: those are dropped, or they
    // would overwrite "ready" or "done" on the page with a stale "N of N bytes" or "step N of N".
    // The answer to a step's progress says whether the job was cancelled: the engine waits for it
    // before the next step, so a cancel made while step k shows ends the run after step k + 1 at
    // the latest, whatever order the two ports deliver in and however far the page lags behind.
    this.progress = this.wrap((p: EngineProgress): boolean => {
      const id = this.runningId;
      const current = p.phase === 'download' || p.phase === 'load' ? this.loading > 0 : id !== null;
      if (!current) return false;
      if (id !== null && p.phase === 'denoise') this.jobs.reportProgress(id, (p.sample - 1) * p.totalSteps + p.step, p.samples * p.totalSteps);
      options.onProgress?.({ ...p, id });
      return (p.phase === 'denoise' || p.phase === 'upscale') && this.runningSignal?.cancelled === true;
    });
  }

  /** The catalogue this client runs requests on. */
  get models(): readonly CatalogueEntry[] {
    return this.options.models;
  }

  /**
   * The calls of the endpoint table this client answers beyond text2img, img2img, inpaint, fetch and
   * system_load: the image-editing calls, and the v4 community-model calls, which are the generation
   * calls with model_id (plus the v4 fields: upscale, lora_model refused).
   */
  handlers(): LocalHandlers {
    return {
      outpaint: (r) => this.outpaint(r),
      super_resolution: (r) => this.superResolution(r),
      base64_crop: (r) => this.base64Crop(r),
      dreambooth: (r) => this.text2img(r),
      dreambooth_img2img: (r) => this.img2img(r),
      dreambooth_inpaint: (r) => this.inpaint(r),
    };
  }

  get modelInfo(): LoadedModelInfo | null {
    return this.loaded;
  }

  /** Loads a model ahead of the first request (the page does this on start). */
  async prepare(modelId = this.options.defaultModelId): Promise<ApiResponse | LoadedModelInfo> {
    return this.withEngine(() => this.ensureModel(modelId));
  }

  text2img(request: unknown): Promise<GenerationResponse> {
    return this.submit('text2img', request);
  }

  img2img(request: unknown): Promise<GenerationResponse> {
    return this.submit('img2img', request);
  }

  inpaint(request: unknown): Promise<GenerationResponse> {
    return this.submit('inpaint', request);
  }

  /** The hosted outpaint call: the image on a larger canvas, the rest generated around it. */
  outpaint(request: unknown): Promise<GenerationResponse> {
    return this.submit('outpaint', request);
  }

  /** A request's state: processing while queued or running, then its stored result (or failed). */
  async fetch(id: unknown): Promise<FetchResponse> {
    const n = typeof id === 'string' && /^\d+$/.test(id.trim()) ? Number(id) : id;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) return fieldError('id', 'The id must be a positive integer.');
    const status = this.jobs.status(n);
    if (status === 'queued' || status === 'running') return this.processing(n);
    await this.finishing.get(n);
    const cached = this.urlCache.get(n);
    if (cached) return cached;
    const record = await this.history?.load(n).catch(() => undefined);
    if (!record) return errorResponse(`No request with id ${n} was found.`);
    if (record.response.status === 'processing') return this.unfinished(record);
    const toUrl = this.options.toUrl ?? defaultToUrl;
    const base64 = record.response.meta?.base64 === 'yes';
    const response = toResponse(record, (png) => toUrl(png, base64));
    this.urlCache.set(n, response);
    return response;
  }

  systemLoad(): SystemLoadResponse {
    return { status: 'ok', queue_num: this.jobs.queueNum, queue_time: Math.round(this.jobs.queueTime()) };
  }

  /**
   * Cancels a queued or running request (the running one when no id is given); true if one was.
   * A running job stops wherever it is: its image downloads abort, the engine stops within a step.
   */
  cancel(id?: number): boolean {
    const target = id ?? this.jobs.runningId;
    if (target === null || target === undefined) return false;
    const cancelled = this.jobs.cancel(target);
    if (cancelled && target === this.runningId) void this.options.engine.cancel();
    return cancelled;
  }

  private async submit(endpoint: GenerationCall, original: unknown): Promise<GenerationResponse> {
    const snapshot = snapshotRequest(original);
    if (!snapshot.ok) return snapshot.error;
    const request = snapshot.fields;
    const r = validateRequest(endpoint, request, this.options.models.map((m) => m.id));
    if (isErrorResponse(r)) return r;
    // What the model's graphs cannot do is refused now, before anything is queued or downloaded.
    const refusal = this.refusal(r);
    if (refusal) return fieldError(refusal.field, refusal.message);
    const meta = { prompt: r.promptUsed, W: r.width, H: r.height, n_samples: r.samples, steps: r.steps, runtime: 'local' };
    const units = this.unetCalls(r) * r.samples + (r.upscale > 1 ? r.samples : 0);
    return this.accept(request, r, meta, units, (id, signal) => this.run(id, r, signal));
  }

  /**
   * The hosted super_resolution call: ESRGAN by 2, 3 or 4 in the worker, tiled. Queued, stored and
   * fetchable like a generation, answered in the success shape with one output.
   */
  async superResolution(original: unknown): Promise<GenerationResponse> {
    const snapshot = snapshotRequest(original);
    if (!snapshot.ok) return snapshot.error;
    const r = validateSuperResolution(snapshot.fields);
    if (isErrorResponse(r)) return r;
    return this.accept(snapshot.fields, r, { scale: r.scale, runtime: 'local' }, 1, (id, signal) => this.runUpscale(id, r, signal));
  }

  /**
   * The hosted base64_crop: the image stored for use as an init image, cropped to its centred square
   * (at most 1024 px, a multiple of 8) unless crop is "false". Answers {status, messege, link, request_id}.
   */
  async base64Crop(original: unknown): Promise<Record<string, unknown> | ErrorResponse> {
    const r = validateBase64Crop(original);
    if (isErrorResponse(r)) return r;
    const image = await loadInitImage(r.image, this.options.fetch ?? ((i, init) => fetch(i, init)), 'image', { timeoutMs: this.options.imageTimeoutMs });
    if ('status' in image) return image;
    const outcome = await this.withEngine(() => settle(() => this.options.engine.editImage({ kind: 'crop', image, crop: r.crop })));
    if (!outcome.ok) return fieldError('image', `The image could not be used: ${outcome.message}.`);
    const id = await this.newId();
    const note = 'image uploaded';
    return {
      status: 'success', messege: note, message: note, link: (this.options.toUrl ?? defaultToUrl)(outcome.value.png, false), request_id: id,
      meta: { W: outcome.value.width, H: outcome.value.height, crop: r.crop ? 'true' : 'false', runtime: 'local' },
    };
  }

  /** Queues a validated job, records it as accepted, and answers when it is done (or at once, as processing). */
  private async accept(
    request: Record<string, unknown>,
    job: { webhook: string | null; trackId: string | number | null; instantResponse: boolean },
    meta: Record<string, unknown>,
    units: number,
    run: (id: number, signal: JobSignal) => Promise<JobOutput>,
  ): Promise<GenerationResponse> {
    const id = await this.newId();
    this.processingMeta.set(id, meta);
    // Recorded as accepted before it runs, so that after a reload fetch(id) can say what became of it.
    await this.history?.save(id, { response: this.processing(id), request, createdAt: Date.now(), owner: this.pageId }).catch(() => undefined);
    const done = this.jobs
      .enqueue(id, units, (signal) => this.withEngine(() => run(id, signal)))
      .catch((e: unknown): JobOutput => ({
        response: errorResponse(e instanceof JobCancelledError ? 'The request was cancelled.' : `The generation failed: ${String(e)}`),
        pngs: [],
      }))
      .then((out) => this.finish(id, job, request, out))
      .finally(() => this.finishing.delete(id));
    // Once the job has left the queue and until its record is stored, fetch(id) waits on this
    // instead of missing it (a fetch right after cancel(id) of a queued job, say).
    this.finishing.set(id, done);
    return job.instantResponse ? this.processing(id) : done;
  }

  /**
   * The UNet calls one image of the request takes with its scheduler (the model's own when the
   * request names none and the model is loaded), which is what progress counts. The engine's first
   * step report corrects an estimate made before the model was known.
   */
  private unetCalls(r: NormalizedRequest): number {
    const fromNoise = r.mode === 'text2img' || r.mode === 'outpaint';
    const firstOrder = fromNoise ? r.steps : Math.floor(r.steps * r.strength);
    const modelId = r.modelId ?? this.options.defaultModelId;
    const scheduler = r.scheduler ?? (this.loaded?.id === modelId ? this.loaded.schedulerClass : undefined);
    if (scheduler === undefined) return firstOrder;
    try {
      return unetCallsPerImage(scheduler, r.schedulerOverrides, r.steps, fromNoise ? null : r.strength);
    } catch {
      return firstOrder; // the engine will say why it cannot run; the estimate does not have to
    }
  }

  /** Why the request's model cannot run it (mode, size), from what its graphs were read to allow, else what the catalogue declares. */
  private refusal(r: NormalizedRequest): { field: string; message: string } | null {
    const modelId = r.modelId ?? this.options.defaultModelId;
    const entry = this.options.models.find((m) => m.id === modelId);
    const limits = this.limits.get(modelId) ?? entry?.limits;
    // Outpainting is inpainting on a larger canvas: whatever can inpaint can outpaint.
    const mode = r.mode === 'outpaint' ? 'inpaint' : r.mode;
    return limits ? limitRefusal(limits, { mode, width: r.width, height: r.height }, entry?.name ?? modelId) : null;
  }

  private async newId(): Promise<number> {
    if (!this.history) return this.counter++;
    try {
      return await this.history.nextId();
    } catch {
      // IndexedDB refused (quota, private mode): ids still have to be unique within this page.
      return this.counter++;
    }
  }

  /** A job the history has as accepted and not finished, which this page does not run. */
  private async unfinished(record: HistoryRecord): Promise<FetchResponse> {
    const owner = record.owner;
    const alive = owner !== undefined && owner !== this.pageId && (await (this.options.isPageAlive ?? isPageAlive)(owner).catch(() => false));
    if (alive) {
      // Another open tab runs it; its own fetch(id) has the eta.
      return processingResponse(record.id, 1, `fetch(${record.id})`, { runtime: 'local', note: 'running in another tab of this app' });
    }
    const failed: FailedResponse = { status: 'failed', id: record.id, message: CLOSED_WHILE_RUNNING, output: '' };
    this.urlCache.set(record.id, failed);
    await this.history?.save(record.id, { response: failed, request: record.request, createdAt: record.createdAt }).catch(() => undefined);
    return failed;
  }

  private processing(id: number): ProcessingResponse {
    return processingResponse(id, this.jobs.eta(id) ?? 1, `fetch(${id})`, this.processingMeta.get(id) ?? {});
  }

  /** Stores the result for fetch(id), tells the webhook, and hands the response back. */
  private async finish(
    id: number,
    r: { webhook: string | null; trackId: string | number | null },
    request: Record<string, unknown>,
    out: JobOutput,
  ): Promise<SuccessResponse | ErrorResponse> {
    this.processingMeta.delete(id);
    const finished: SuccessResponse | FailedResponse = out.response.status === 'success'
      ? out.response
      : { status: 'failed', id, message: out.response.message, output: '' };
    this.urlCache.set(id, finished);
    await this.history?.save(id, { response: finished, request, createdAt: Date.now(), pngs: out.pngs, inputs: out.inputs }).catch(() => undefined);
    if (r.webhook) void (this.options.postWebhook ?? postWebhook)(r.webhook, webhookPayload(finished, r.trackId));
    return out.response;
  }

  /** Engine calls (model loads and jobs) one at a time. */
  private withEngine<T>(work: () => Promise<T>): Promise<T> {
    const run = this.engineChain.then(work, work);
    this.engineChain = run.catch(() => undefined);
    return run;
  }

  private async ensureModel(modelId: string): Promise<ApiResponse | LoadedModelInfo> {
    if (this.loaded?.id === modelId) return this.loaded;
    const entry = this.options.models.find((m) => m.id === modelId);
    if (!entry) return fieldError('model_id', `The model id "${modelId}" is not available here.`);
    // The engine drops the loaded model before it loads another, so from here until a load succeeds
    // nothing is loaded: a failed load must not leave us believing the old model is still there.
    this.loaded = null;
    this.loading++;
    const outcome = await settle(() => this.options.engine.loadModel(entry.source, this.progress)).finally(() => this.loading--);
    if (!outcome.ok) return errorResponse(`The model ${modelId} could not be loaded: ${outcome.message}`);
    this.loaded = outcome.value;
    this.limits.set(modelId, outcome.value.limits);
    return outcome.value;
  }

  private wrap<T extends (...args: never[]) => unknown>(fn: T): T {
    return this.options.proxy ? this.options.proxy(fn) : fn;
  }

  private async run(id: number, r: NormalizedRequest, signal: JobSignal): Promise<JobOutput> {
    const started = performance.now();
    const stopIfCancelled = () => {
      if (signal.cancelled) throw new JobCancelledError(id);
    };
    stopIfCancelled();
    const modelId = r.modelId ?? this.options.defaultModelId;
    const model = await this.ensureModel(modelId);
    if ('status' in model) return { response: model as ErrorResponse, pngs: [] };
    // The graphs, now read, may allow less than the catalogue knew (a model added by URL with inline weights).
    const refused = this.refusal(r);
    if (refused) return { response: fieldError(refused.field, refused.message), pngs: [] };
    stopIfCancelled();
    let job: WorkerJob | ErrorResponse;
    try {
      job = await this.workerJob(r, signal.abort);
    } catch (e) {
      if (e instanceof ImageFetchAborted) throw new JobCancelledError(id);
      throw e;
    }
    if ('status' in job) return { response: job, pngs: [] };
    stopIfCancelled();
    this.runningId = id;
    this.runningSignal = signal;
    // The encoded images move to the worker and come back with the result (see WorkerGeneration).
    const sent = this.options.transfer ? this.options.transfer(job, jobImageBuffers(job)) : job;
    const outcome = await settle(() => this.options.engine.generate(sent, this.progress)).finally(() => {
      this.runningId = null;
      this.runningSignal = null;
    });
    if (!outcome.ok) {
      if (outcome.kind === 'cancelled') throw new JobCancelledError(id);
      const failure = (response: ErrorResponse) => ({ response, pngs: [] });
      if (outcome.kind === 'init_image') {
        const field = r.mode === 'outpaint' ? 'image' : 'init_image';
        return failure(fieldError(field, `The ${field.replace('_', ' ')} could not be used: ${outcome.message}.`));
      }
      if (outcome.kind === 'mask_image') return failure(fieldError('mask_image', `The mask image could not be used: ${outcome.message}.`));
      const response = errorResponse(`The generation failed: ${outcome.message}`);
      if (outcome.kind === 'device') deviceFailures.add(response);
      return failure(response);
    }
    const result = outcome.value;
    if (result.timings.stepsRun > 0) this.jobs.recordStepTime(result.timings.denoise / result.timings.stepsRun);
    const meta = this.meta(r, result, model, job.seed);
    let pngs = result.images;
    if (r.upscale > 1) {
      // The v4 upscale field: each result through super resolution, as the hosted service does.
      const upscaled: Uint8Array[] = [];
      for (const png of pngs) {
        const done = await this.upscaleOnEngine(id, signal, { bytes: png.slice().buffer as ArrayBuffer, mimeType: 'image/png' }, r.upscale as UpscaleFactor);
        if (!done.ok) return done.kind === 'cancelled' ? cancelled(id) : { response: errorResponse(`The upscale of the result failed: ${done.message}`), pngs: [] };
        upscaled.push(done.value.png);
        Object.assign(meta, { W: done.value.width, H: done.value.height });
      }
      pngs = upscaled;
      meta.upscale = r.upscale;
    }
    const toUrl = this.options.toUrl ?? defaultToUrl;
    const output = pngs.map((png) => toUrl(png, r.base64));
    return {
      response: successResponse(id, (performance.now() - started) / 1000, output, meta),
      pngs,
      inputs: jobInputs(job, result.returnedImages),
    };
  }

  /** One super-resolution run on the worker, as the running job (its progress answers carry cancel). */
  private async upscaleOnEngine(id: number, signal: JobSignal, image: EncodedImage, scale: UpscaleFactor): Promise<WorkerOutcome<ImageEditResult>> {
    this.runningId = id;
    this.runningSignal = signal;
    const job: ImageEditJob = { kind: 'upscale', image, scale };
    const sent = this.options.transfer ? this.options.transfer(job, [image.bytes]) : job;
    return settle(() => this.options.engine.editImage(sent, this.progress)).finally(() => {
      this.runningId = null;
      this.runningSignal = null;
    });
  }

  private async runUpscale(id: number, r: SuperResolutionRequest, signal: JobSignal): Promise<JobOutput> {
    const started = performance.now();
    if (signal.cancelled) return cancelled(id);
    let image: EncodedImage | ErrorResponse;
    try {
      image = await loadInitImage(r.image, this.options.fetch ?? ((i, init) => fetch(i, init)), r.imageField, { signal: signal.abort, timeoutMs: this.options.imageTimeoutMs });
    } catch (e) {
      if (e instanceof ImageFetchAborted) return cancelled(id);
      throw e;
    }
    if ('status' in image) return { response: image, pngs: [] };
    if (signal.cancelled) return cancelled(id);
    const outcome = await this.upscaleOnEngine(id, signal, image, r.scale);
    if (!outcome.ok) {
      if (outcome.kind === 'cancelled') return cancelled(id);
      if (outcome.kind === 'init_image') return { response: fieldError(r.imageField, `The image could not be used: ${outcome.message}.`), pngs: [] };
      return { response: errorResponse(`The upscale failed: ${outcome.message}`), pngs: [] };
    }
    const v = outcome.value;
    const meta: Record<string, unknown> = {
      W: v.width, H: v.height, scale: r.scale, model: LOCAL_UPSCALER_ID, input_W: v.inputWidth, input_H: v.inputHeight,
      [r.imageField]: imageReference(r.image), base64: r.base64 ? 'yes' : 'no', track_id: r.trackId, runtime: 'local',
      timings: { upscale_seconds: round3(v.seconds) },
    };
    const toUrl = this.options.toUrl ?? defaultToUrl;
    return {
      response: successResponse(id, (performance.now() - started) / 1000, [toUrl(v.png, r.base64)], meta),
      pngs: [v.png],
      inputs: { [r.imageField === 'url' ? 'url' : 'init_image']: v.returnedImage },
    };
  }

  /** The engine's job: the request's values, a seed, and the images fetched (still encoded). */
  private async workerJob(r: NormalizedRequest, abort: AbortSignal): Promise<WorkerJob | ErrorResponse> {
    const base = {
      prompt: r.promptUsed,
      negativePrompt: r.negativePrompt,
      width: r.width,
      height: r.height,
      samples: r.samples,
      steps: r.steps,
      guidanceScale: r.guidanceScale,
      seed: r.seed ?? randomSeed(),
      scheduler: r.scheduler,
      schedulerOverrides: r.schedulerOverrides,
      safetyChecker: r.safetyChecker,
    };
    if (r.mode === 'text2img') return { ...base, mode: 'text2img' };
    const fetchFn = this.options.fetch ?? ((i, init) => fetch(i, init));
    const imageOptions = { signal: abort, timeoutMs: this.options.imageTimeoutMs };
    const initImage = await loadInitImage(r.initImage!, fetchFn, r.mode === 'outpaint' ? 'image' : 'init_image', imageOptions);
    if ('status' in initImage) return initImage;
    if (r.mode === 'outpaint') return { ...base, mode: 'outpaint', initImage, overlap: r.overlapWidth ?? 0 };
    if (r.mode === 'img2img') return { ...base, mode: 'img2img', strength: r.strength, initImage };
    const maskImage = await loadInitImage(r.maskImage!, fetchFn, 'mask_image', imageOptions);
    if ('status' in maskImage) return maskImage;
    return { ...base, mode: 'inpaint', strength: r.strength, initImage, maskImage };
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
      // Never claim a check that did not run.
      safety_checker: result.safetyChecked ? 'yes' : 'no',
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
        ...(result.timings.loop ? { loop: loopMeta(result.timings.loop) } : {}),
      },
    };
    if (r.mode === 'outpaint') {
      meta.image = imageReference(r.initImage);
      meta.overlap_width = r.overlapWidth;
    } else if (r.mode !== 'text2img') {
      meta.strength = r.strength;
      // A URL is echoed; inline data (maybe tens of MB) only as a short reference.
      meta.init_image = imageReference(r.initImage);
    }
    if (r.mode === 'inpaint') meta.mask_image = imageReference(r.maskImage);
    if (result.safetyChecked) meta.nsfw_content_detected = result.nsfw;
    else if (r.safetyChecker) meta.safety_checker_status = `not run: the model ${model.id} has no safety checker`;
    if (result.promptTruncated) meta.prompt_truncated = `the prompt is longer than the text encoder's 77 tokens and was truncated`;
    return meta;
  }
}

/** The job's images as fetched, for the history: as the worker handed them back where it moved them there. */
function jobInputs(job: WorkerJob, returned: WorkerGeneration['returnedImages']): JobOutput['inputs'] {
  if (job.mode === 'text2img') return undefined;
  const initImage = returned?.initImage ?? job.initImage;
  if (job.mode === 'outpaint') return { image: initImage };
  return job.mode === 'img2img' ? { init_image: initImage } : { init_image: initImage, mask_image: returned?.maskImage ?? job.maskImage };
}

/** Holds this page's lock until the page goes away, so other pages can tell that it is open. */
function holdPageLock(pageId: string): void {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks) return;
  void locks.request(PAGE_LOCK_PREFIX + pageId, () => new Promise<void>(() => undefined)).catch(() => undefined);
}

async function isPageAlive(owner: string): Promise<boolean> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks) return false;
  const state = await locks.query();
  return (state.held ?? []).some((l) => l.name === PAGE_LOCK_PREFIX + owner);
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

function cancelled(id: number): never {
  throw new JobCancelledError(id);
}

function defaultToUrl(png: Uint8Array, base64: boolean): string {
  if (base64) {
    let binary = '';
    for (let i = 0; i < png.length; i += 0x8000) binary += String.fromCharCode(...png.subarray(i, i + 0x8000));
    return `data:image/png;base64,${btoa(binary)}`;
  }
  return URL.createObjectURL(new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
}

/**
 * Where the denoising loop ran and what it cost beyond the models: the share of loop time outside
 * session.run, and bytes between host and GPU per step (zero on WASM, which has no GPU).
 */
function loopMeta(l: LoopStats): Record<string, unknown> {
  const perStep = (bytes: number, steps: number) => (steps > 0 ? Math.round(bytes / steps) : 0);
  return {
    mode: l.mode,
    reason: l.reason,
    steps: l.steps,
    loop_seconds: round3(l.loopSeconds),
    session_run_seconds: round3(l.sessionRunSeconds),
    overhead_share: l.loopSeconds > 0 ? Math.round((1 - l.sessionRunSeconds / l.loopSeconds) * 10000) / 10000 : 0,
    upload_bytes_per_step: perStep(l.uploadBytes, l.steps),
    readback_bytes_per_step: perStep(l.readbackBytes, l.steps),
    preview_steps: l.previewSteps,
    readback_bytes_per_step_outside_previews: perStep(l.readbackBytesOutsidePreviews, l.stepsOutsidePreviews),
  };
}
