/**
 * The engine: loads a model set into ORT sessions and runs jobs through the pipeline.
 * DOM-free, ORT injected: the worker runs it on onnxruntime-web, tests on onnxruntime-node.
 */
import { createClipTokenizer } from './tokenizer.ts';
import { createTorchGenerator } from './random.ts';
import { rgbaToTensor, tensorToRgb } from './image-tensor.ts';
import { binariseMask } from './inpaint-mask.ts';
import { encodeRgbPng } from './png.ts';
import { runPipeline, type DiffusionModels, type GenerationInput } from './pipeline.ts';
import { createModelSession, errorText, RunMeter, type Backend, type BackendChoice, type GpuTensor, type HostTensor, type ModelSession, type OrtModule, type SessionFactoryOptions } from './runtime.ts';
import type { DeviceModels, DeviceTensor } from './device-loop.ts';
import { OnnxParseError, readGraphInputs, textLengthOverrides } from '../models/onnx-graph.ts';
import { emptyLoopStats, LoopRecorder, type LoopStats } from './loop-stats.ts';
import { readClipPreprocessConfig, SAFETY_CHECKER_FILES, SafetyChecker } from './safety-checker.ts';
import { LivePreview, TaesdDecoder } from './preview.ts';
import type { EngineProgress, GenerationJob, GenerationResult, RgbaImage } from './jobs.ts';
import { GRAPH_FILES, readModelConfig, type ModelConfig } from '../models/model-config.ts';
import type { ModelSource } from '../models/model-source.ts';
import { BrokenModelFileError, CorruptCacheError, type ModelStore } from '../models/model-store.ts';

export interface LoadedModelInfo {
  id: string;
  backend: Backend;
  backendReason: string;
  schedulerClass: string;
  /** Input dtypes as the sessions declare them, for display and diagnostics. */
  inputTypes: Record<string, string>;
  /** Where the GPU-resident loop runs: true, or why every step goes through the host. */
  deviceLoop: true | string;
  /**
   * The load, seconds: reading the files (from IndexedDB, or the network on a first load) and
   * creating the sessions from the bytes in memory. Creation alone is what a load from an
   * in-memory ArrayBuffer costs: the reference the store's overhead is measured against.
   */
  loadTimings: { readSeconds: number; createSeconds: number; largestFileBytes: number };
}

type HelperSessions = Pick<Sessions, 'latentStep' | 'latentStepRead' | 'toDevice' | 'toHost'>;

interface Sessions {
  textEncoder: ModelSession;
  unet: ModelSession;
  /** Absent in text2img-only exports (e.g. Microsoft's SD 1.5 for WebNN). */
  vaeEncoder?: ModelSession;
  vaeDecoder: ModelSession;
  /** Optional: absent when the model has no safety_checker/model.onnx. */
  safetyChecker?: ModelSession;
  /**
   * The helper graphs of the GPU-resident loop (tools/engine-helpers), on WebGPU with the auto loop:
   * latent-step leaving both outputs on the GPU, the same returning the latents to the host (preview
   * and last steps), to-device for the text embeddings, to-host for reading a GPU tensor back.
   */
  latentStep?: ModelSession;
  latentStepRead?: ModelSession;
  toDevice?: ModelSession;
  toHost?: ModelSession;
}

/**
 * Which denoising loop the engine runs. auto: on WebGPU the GPU-resident loop wherever it applies.
 * host: every step through the host (UNet outputs read back each step). naive: the host loop with
 * guidance as two batch-1 UNet calls, the way most browser demos run it: the bench's baseline.
 */
export type LoopPreference = 'auto' | 'host' | 'naive';

export interface EngineOptions {
  loop?: LoopPreference;
  /** The bytes of a helper graph by file name (the worker fetches engine/<file>); absent: no device loop. */
  helperGraph?: (file: string) => Promise<Uint8Array>;
}

interface LoadedModel {
  source: ModelSource;
  config: ModelConfig;
  tokenizer: ReturnType<typeof createClipTokenizer>;
  sessions: Sessions;
  /** Whether the device loop can run (WebGPU, helper graphs loaded, auto loop, a UNet it fits); else why not. */
  deviceLoop: true | string;
  safetyChecker: SafetyChecker | null;
  /** 2 ** (len(vae block_out_channels) - 1). */
  vaeScaleFactor: number;
  unetInChannels: number;
  backend: BackendChoice;
  loadTimings: LoadedModelInfo['loadTimings'];
}

/**
 * The GPU device was lost or memory ran out during a run. The engine has released its sessions
 * by then, so the next loadModel recreates them (on the same or, if the caller chooses, another backend).
 */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

/**
 * What WebGPU device loss and out-of-memory look like in onnxruntime-web's and the browser's
 * error text: "device lost" / "Device was lost", "out of memory" (GPUOutOfMemoryError's message,
 * WASM's "Out of memory"), OOM (emscripten's "Aborted(OOM)"), and any message naming GPUDevice.
 */
const DEVICE_FAILURE = /device\s+(?:was\s+|is\s+|has\s+been\s+)?lost|out\s+of\s+memory|\bOOM\b|GPUDevice/i;

export function isDeviceFailure(e: unknown): boolean {
  return DEVICE_FAILURE.test(errorText(e)) || (e instanceof Error && e.name === 'GPUOutOfMemoryError');
}

/** JSON file of the model, or null when it has none (or it does not parse). */
function jsonFile(bytes: Map<string, Uint8Array>, path: string): Record<string, unknown> | null {
  const b = bytes.get(path);
  if (!b) return null;
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(b));
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export type ProgressSink = (p: EngineProgress) => void;

/** onnxruntime's words for bytes that are not a model: "protobuf parsing failed", "Failed to load model", ... */
const UNREADABLE_GRAPH = /protobuf|pars(e|ing) failed|failed to load model|invalid (onnx )?model|ModelProto/i;

/** Whether a failure says the bytes are not a model: our own graph reader's, or onnxruntime's words. */
function isUnreadableGraph(e: unknown): boolean {
  return e instanceof OnnxParseError || UNREADABLE_GRAPH.test(errorText(e));
}

/** A graph file of the model that does not parse; `path` names it, so only it is checked and refetched. */
class UnreadableGraphError extends Error {
  override name = 'UnreadableGraphError';
  constructor(readonly path: string, cause: unknown) {
    super(`${path}: ${errorText(cause)}`, { cause });
  }
}

/** Graph files and their external weights: read from the store one at a time, right before their session. */
function isGraphFile(path: string): boolean {
  return /\.onnx(_data|\.data)?$/.test(path);
}

/**
 * A model's files as the sessions need them. Small files (configs, tokenizer) are held in memory;
 * each graph is read from the store when its session is created and dropped after, so a load never
 * holds more than one graph's bytes next to the copy ORT makes of them.
 */
interface ModelFiles {
  has(path: string): boolean;
  graph(path: string): Promise<{ bytes: Uint8Array; externalData?: { path: string; data: Uint8Array }[] }>;
  /** Seconds spent reading graphs from the store, and the largest file read. */
  readonly readSeconds: number;
  readonly largestFileBytes: number;
}

function modelFiles(store: ModelStore, source: ModelSource): ModelFiles {
  const paths = new Set(source.files.map((f) => f.path));
  let readSeconds = 0;
  let largestFileBytes = 0;
  const read = async (path: string) => {
    const file = source.files.find((f) => f.path === path);
    if (!file) throw new Error(`${source.id}: the model has no ${path}`);
    const started = performance.now();
    const bytes = await store.getFile(source, file);
    readSeconds += (performance.now() - started) / 1000;
    largestFileBytes = Math.max(largestFileBytes, bytes.byteLength);
    return bytes;
  };
  return {
    has: (path) => paths.has(path),
    async graph(path) {
      const bytes = await read(path);
      const dataPath = `${path}_data`;
      // The graph names its external file relative to itself: "model.onnx_data".
      if (!paths.has(dataPath)) return { bytes };
      return { bytes, externalData: [{ path: `${path.split('/').pop()}_data`, data: await read(dataPath) }] };
    },
    get readSeconds() {
      return readSeconds;
    },
    get largestFileBytes() {
      return largestFileBytes;
    },
  };
}

export class Engine {
  private model: LoadedModel | null = null;
  /** Where TAESD's decoder lives (the model set "taesd"); null: previews use the linear approximation. */
  private previewSource: ModelSource | null = null;
  private taesd: Promise<TaesdDecoder | null> | null = null;

  private readonly loopPreference: LoopPreference;

  constructor(
    private readonly ort: OrtModule,
    private readonly store: ModelStore,
    private backend: BackendChoice,
    private readonly options: EngineOptions = {},
  ) {
    this.loopPreference = options.loop ?? 'auto';
  }

  get loadedModelId(): string | null {
    return this.model?.source.id ?? null;
  }

  /** Loads every file of the model (cache first) and creates its sessions; on WebGPU failure falls back to WASM and says why. */
  async loadModel(source: ModelSource, onProgress?: ProgressSink): Promise<LoadedModelInfo> {
    if (this.model?.source.id === source.id && this.model.source.baseUrl === source.baseUrl) return this.info(this.model);
    await this.unload();
    const readStarted = performance.now();
    // Everything into the store first (a no-op when cached), then the small files into memory; graphs wait for their sessions.
    await this.store.download(source, { onProgress: (p) => onProgress?.({ phase: 'download', ...p }) });
    const bytes = new Map<string, Uint8Array>();
    for (const file of source.files) if (!isGraphFile(file.path)) bytes.set(file.path, await this.store.getFile(source, file));
    const smallFilesSeconds = (performance.now() - readStarted) / 1000;
    const createStarted = performance.now();
    const decoder = new TextDecoder();
    const config = await readModelConfig(async (path) => (bytes.has(path) ? decoder.decode(bytes.get(path)) : null));
    const tokenizer = createClipTokenizer(config.tokenizer.vocab, config.tokenizer.merges, {
      maxLength: config.tokenizer.maxLength,
      padTokenId: config.tokenizer.padTokenId,
    });
    const files = modelFiles(this.store, source);
    const preprocessor = jsonFile(bytes, SAFETY_CHECKER_FILES.preprocessor);
    if (files.has(SAFETY_CHECKER_FILES.graph) && !preprocessor) throw new Error(`${source.id}: the model has a safety checker but no ${SAFETY_CHECKER_FILES.preprocessor}`);
    let created: Awaited<ReturnType<Engine['createSessions']>> | null = null;
    for (let attempt = 0; !created; attempt++) {
      try {
        created = await this.createOnAnyBackend(files, config.tokenizer.maxLength, source.id, onProgress);
      } catch (e) {
        if (!(e instanceof UnreadableGraphError)) throw e;
        // A file that does not parse: either its stored bytes were damaged (then that file alone is
        // dropped and fetched again, once) or it is exactly what was downloaded and verified, and the
        // published file itself is broken (then fetching it again would only loop).
        const check = await this.store.checkStoredFile(source, e.path);
        if (check.verdict === 'intact') throw new BrokenModelFileError(source.id, e.path, check.sha256, e.cause);
        if (attempt >= 1) throw new CorruptCacheError(source.id, [e.path], e.cause);
        onProgress?.({ phase: 'load', modelId: source.id, message: `${e.path} was damaged in storage; downloading it again` });
      }
    }
    const { sessions, deviceLoop } = created;
    const loadTimings = {
      readSeconds: smallFilesSeconds + files.readSeconds,
      createSeconds: (performance.now() - createStarted) / 1000 - files.readSeconds,
      largestFileBytes: files.largestFileBytes,
    };
    let safetyChecker: SafetyChecker | null = null;
    try {
      if (sessions.safetyChecker && preprocessor) safetyChecker = new SafetyChecker(sessions.safetyChecker, readClipPreprocessConfig(preprocessor));
    } catch (e) {
      // a checker that cannot run must not be skipped silently: the load fails, without leaking sessions
      await Promise.all(Object.values(sessions).map((s: ModelSession) => s.release().catch(() => undefined)));
      throw e;
    }
    const vae = jsonFile(bytes, 'vae_decoder/config.json') ?? jsonFile(bytes, 'vae_encoder/config.json');
    const blocks = vae?.block_out_channels;
    const vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : 8;
    const sampleChannels = sessions.unet.input('sample').shape[1];
    const configChannels = jsonFile(bytes, 'unet/config.json')?.in_channels;
    const unetInChannels = typeof sampleChannels === 'number' && sampleChannels > 0 ? sampleChannels
      : typeof configChannels === 'number' ? configChannels
      : config.latentChannels;
    this.model = { source, config, tokenizer, sessions, deviceLoop, safetyChecker, vaeScaleFactor, unetInChannels, backend: this.backend, loadTimings };
    return this.info(this.model);
  }

  /** Sessions on the chosen backend; where WebGPU cannot run the model, on WASM, saying why. */
  private async createOnAnyBackend(files: ModelFiles, textLength: number, modelId: string, onProgress?: ProgressSink): Promise<{ sessions: Sessions; deviceLoop: true | string }> {
    try {
      onProgress?.({ phase: 'load', modelId, message: `creating sessions on ${this.backend.backend}` });
      return await this.createSessions(files, this.backend.backend, textLength);
    } catch (e) {
      if (this.backend.backend !== 'webgpu' || e instanceof UnreadableGraphError) throw e;
      this.backend = { backend: 'wasm', shaderF16: false, reason: `WebGPU could not run this model (${errorText(e)}); using WASM` };
      onProgress?.({ phase: 'load', modelId, message: this.backend.reason });
      return this.createSessions(files, 'wasm', textLength);
    }
  }

  /** Every session of the model; on any failure the ones already made are released before it is rethrown. */
  private async createSessions(files: ModelFiles, backend: Backend, textLength: number): Promise<{ sessions: Sessions; deviceLoop: true | string }> {
    const made: ModelSession[] = [];
    try {
      return await this.createSessionsInto(made, files, backend, textLength);
    } catch (e) {
      await Promise.all(made.map((m) => m.release().catch(() => undefined)));
      throw e;
    }
  }

  private async createSessionsInto(made: ModelSession[], files: ModelFiles, backend: Backend, textLength: number): Promise<{ sessions: Sessions; deviceLoop: true | string }> {
    const create = async (label: string, path: string, device: Pick<SessionFactoryOptions, 'outputLocation' | 'download'> = {}) => {
      // Graphs over 2 GB (or exported that way) keep their weights in "<name>_data" beside them.
      const { bytes, externalData } = await files.graph(path);
      let session: ModelSession;
      try {
        // The text length is the one shape every request shares; batch and image size stay free.
        const freeDimensionOverrides = textLengthOverrides(readGraphInputs(bytes), textLength);
        session = await createModelSession(label, bytes, { ort: this.ort, backend, externalData, freeDimensionOverrides, ...device });
      } catch (e) {
        if (isUnreadableGraph(e)) throw new UnreadableGraphError(path, e);
        throw e;
      }
      made.push(session);
      return session;
    };
    const textEncoder = await create('text_encoder', GRAPH_FILES.textEncoder);
    let deviceLoop: true | string = this.hostLoopReason(backend);
    let helpers: HelperSessions = {};
    let unet: ModelSession | null = null;
    if (deviceLoop === true) {
      // The UNet leaves its output on the GPU; run() reads it back through to-host where the host loop needs it.
      const download = async (t: GpuTensor) => (await helpers.toHost!.runMixed({ x: t })).y;
      unet = await create('unet', GRAPH_FILES.unet, { outputLocation: 'gpu-buffer', download });
      try {
        helpers = await this.createHelpers(unet);
        made.push(...(Object.values(helpers) as ModelSession[]));
      } catch (e) {
        deviceLoop = `the helper graphs could not be loaded (${errorText(e)})`;
        made.splice(made.indexOf(unet), 1);
        await unet.release();
        unet = null;
      }
    }
    unet ??= await create('unet', GRAPH_FILES.unet);
    const sessions: Sessions = { textEncoder, unet, vaeDecoder: await create('vae_decoder', GRAPH_FILES.vaeDecoder), ...helpers };
    if (files.has(GRAPH_FILES.vaeEncoder)) sessions.vaeEncoder = await create('vae_encoder', GRAPH_FILES.vaeEncoder);
    if (files.has(SAFETY_CHECKER_FILES.graph)) sessions.safetyChecker = await create('safety_checker', SAFETY_CHECKER_FILES.graph);
    const unetBatch = sessions.unet.fixedBatch('sample');
    if (deviceLoop === true && unetBatch !== null) deviceLoop = `the UNet export fixes its batch to ${unetBatch}; the device loop runs guidance as one batch-2 call`;
    return { sessions, deviceLoop };
  }

  /** True where the device loop may run on this backend, else why the loop runs on the host. */
  private hostLoopReason(backend: Backend): true | string {
    if (backend === 'wasm') return 'WASM runs on the CPU: the latents are in host memory already';
    if (backend !== 'webgpu') return `the ${backend} backend runs on the CPU: the latents are in host memory already`;
    if (this.loopPreference === 'host') return 'the host loop was asked for';
    if (this.loopPreference === 'naive') return 'the naive baseline was asked for: guidance as two batch-1 UNet calls, latents through the host every step';
    if (!this.options.helperGraph) return 'the engine was started without its helper graphs';
    return true;
  }

  /** The helper sessions in the float type of the UNet's I/O. */
  private async createHelpers(unet: ModelSession): Promise<HelperSessions> {
    const float = (type: string) => (type === 'float16' ? 'f16' : 'f32');
    const sampleType = float(unet.input('sample').type);
    if (float(unet.outputs[0].type) !== sampleType) throw new Error('the UNet\'s sample input and output differ in float type');
    const made: ModelSession[] = [];
    const helper = async (name: string, f: string, outputLocation: SessionFactoryOptions['outputLocation']) => {
      const session = await createModelSession(`helper ${name}`, await this.options.helperGraph!(`${name}.${f}.onnx`), { ort: this.ort, backend: 'webgpu', outputLocation });
      made.push(session);
      return session;
    };
    try {
      return {
        latentStep: await helper('latent-step', sampleType, 'gpu-buffer'),
        latentStepRead: await helper('latent-step', sampleType, { latents: 'cpu', next_sample: 'gpu-buffer' }),
        toDevice: await helper('to-device', float(unet.input('encoder_hidden_states').type), 'gpu-buffer'),
        toHost: await helper('to-host', sampleType, { y: 'cpu' }),
      };
    } catch (e) {
      // the ones made before the failure must not outlive it
      await Promise.all(made.map((h) => h.release().catch(() => undefined)));
      throw e;
    }
  }

  /** The TAESD model set for live previews, or null for the linear approximation only. */
  setPreviewModel(source: ModelSource | null): void {
    this.previewSource = source;
    const old = this.taesd;
    this.taesd = null;
    void old?.then((d) => d?.release()).catch(() => undefined);
  }

  /** TAESD's decoder when its model loads from the store; a failure only means linear previews. */
  private previewDecoder(): Promise<TaesdDecoder | null> {
    const source = this.previewSource;
    if (!source) return Promise.resolve(null);
    this.taesd ??= (async () => {
      try {
        const file = source.files[0];
        const bytes = await this.store.getFile(source, file);
        return new TaesdDecoder(await createModelSession('taesd', bytes, { ort: this.ort, backend: this.backend.backend }));
      } catch {
        return null;
      }
    })();
    return this.taesd;
  }

  async unload(): Promise<void> {
    const m = this.model;
    this.model = null;
    // After a device loss releasing can fail too; the sessions are dropped either way.
    if (m) await Promise.all(Object.values(m.sessions).map((s: ModelSession) => s.release().catch(() => undefined)));
  }

  private info(m: LoadedModel): LoadedModelInfo {
    const inputTypes: Record<string, string> = {};
    for (const [component, s] of Object.entries(m.sessions)) for (const i of s.inputs) inputTypes[`${component}.${i.name}`] = i.type;
    return {
      id: m.source.id, backend: m.backend.backend, backendReason: m.backend.reason, schedulerClass: m.config.schedulerClass, inputTypes,
      deviceLoop: m.deviceLoop, loadTimings: m.loadTimings,
    };
  }

  /**
   * Runs a job. WebGPU device loss or out-of-memory ends it with a DeviceLostError and releases
   * the sessions (see isDeviceFailure); the model must then be loaded again.
   */
  async generate(job: GenerationJob, onProgress?: ProgressSink, shouldStop?: () => boolean): Promise<GenerationResult> {
    const m = this.model;
    if (!m) throw new Error('no model is loaded');
    try {
      return await this.run(m, job, onProgress, shouldStop);
    } catch (e) {
      if (!isDeviceFailure(e)) throw e;
      await this.unload();
      // TAESD's session died with the device too: load it again next time
      this.setPreviewModel(this.previewSource);
      throw new DeviceLostError(
        `The GPU device was lost or ran out of memory during generation (${errorText(e)}). ` +
          'The model was unloaded; load it again to continue (on WASM if the GPU keeps failing).',
      );
    }
  }

  private async run(m: LoadedModel, job: GenerationJob, onProgress?: ProgressSink, shouldStop?: () => boolean): Promise<GenerationResult> {
    const started = performance.now();
    const cond = m.tokenizer.encodeDetailed(job.prompt);
    const uncond = m.tokenizer.encodeDetailed(job.negativePrompt);
    const models = diffusionModels(m, this.loopPreference === 'naive');
    const input = generationInput(job);
    const schedulerName = job.scheduler ?? m.config.schedulerClass;
    const schedulerConfig = { ...m.config.schedulerConfig, ...job.schedulerOverrides };
    const checker = job.safetyChecker ? m.safetyChecker : null;
    const images: Uint8Array[] = [];
    const seeds: number[] = [];
    const nsfw: boolean[] = [];
    let denoiseSeconds = 0;
    let stepsRun = 0;
    const taesd = onProgress ? await this.previewDecoder() : null;
    // One meter over the job's sessions (TAESD's preview session stays out: previews are not the loop).
    const meter = new RunMeter();
    for (const s of Object.values(m.sessions) as ModelSession[]) s.meter = meter;
    const loop = emptyLoopStats();
    for (let i = 0; i < job.samples; i++) {
      const seed = job.seed + i;
      seeds.push(seed);
      const loopStart = performance.now();
      const live = onProgress ? new LivePreview(taesd) : null;
      const recorder = new LoopRecorder(meter, loop);
      const decoded = await runPipeline(models, {
        condIds: cond.ids,
        uncondIds: uncond.ids,
        width: job.width,
        height: job.height,
        steps: job.steps,
        guidanceScale: job.guidanceScale,
        schedulerName,
        schedulerConfig,
        rng: createTorchGenerator(seed),
        input,
      }, {
        shouldStop,
        onLoop: (choice) => {
          loop.mode = this.loopPreference === 'naive' ? 'naive' : choice.mode;
          loop.reason = choice.reason;
          recorder.stepStarted();
        },
        wantsLatents: live ? (step, total) => live.wants(step, total) : undefined,
        onStep: async (p) => {
          stepsRun++;
          const preview = await live?.afterStep(p.step, p.totalSteps, p.seconds, p.latents, p.dims);
          recorder.stepEnded(p.seconds, Boolean(preview), p.step === p.totalSteps);
          // ORT's WASM runs settle as microtasks: without a macrotask here the worker never reads a
          // cancel message until the whole job is done.
          await nextTask();
          onProgress?.({ phase: 'denoise', sample: i + 1, samples: job.samples, step: p.step, totalSteps: p.totalSteps, ...(preview ? { preview } : {}) });
        },
      });
      denoiseSeconds += (performance.now() - loopStart) / 1000;
      onProgress?.({ phase: 'decode', sample: i + 1, samples: job.samples });
      const [, , h, w] = decoded.dims;
      const rgb = tensorToRgb(decoded.data as Float32Array, w, h);
      if (checker) {
        const flagged = await checker.isFlagged(decoded.data as Float32Array, rgb, w, h);
        nsfw.push(flagged);
        // diffusers' checker returns a black image for a flagged one
        if (flagged) rgb.fill(0);
      }
      images.push(encodeRgbPng(rgb, w, h));
    }
    return {
      images,
      seeds,
      width: job.width,
      height: job.height,
      scheduler: schedulerName,
      promptTruncated: cond.truncated,
      safetyChecked: checker !== null,
      nsfw,
      hasSafetyChecker: m.safetyChecker !== null,
      timings: { total: (performance.now() - started) / 1000, denoise: denoiseSeconds, stepsRun, loop },
    };
  }
}

/** Resolves on a fresh macrotask (a MessageChannel message: no setTimeout clamping), letting queued messages in. */
function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

function imageTensor(image: RgbaImage, job: GenerationJob, what: string): Float32Array {
  if (image.width !== job.width || image.height !== job.height || image.rgba.length !== job.width * job.height * 4) {
    throw new Error(`the ${what} is ${image.width}x${image.height}, the job is ${job.width}x${job.height}`);
  }
  return rgbaToTensor(image.rgba, job.width, job.height);
}

/** The job's images as the pipeline takes them. */
function generationInput(job: GenerationJob): GenerationInput {
  switch (job.mode) {
    case 'text2img':
      return { mode: 'text2img' };
    case 'img2img':
      return { mode: 'img2img', image: imageTensor(job.initImage, job, 'init image'), strength: job.strength };
    case 'inpaint': {
      const image = imageTensor(job.initImage, job, 'init image');
      imageTensor(job.maskImage, job, 'mask image');
      return { mode: 'inpaint', image, mask: binariseMask(job.maskImage.rgba, job.width, job.height), strength: job.strength };
    }
  }
}

/** The pipeline's view of a loaded model set: I/O names and batch limits read from the sessions. */
function diffusionModels(m: LoadedModel, naive: boolean): DiffusionModels {
  const { textEncoder, unet, vaeEncoder, vaeDecoder } = m.sessions;
  const first = (out: Record<string, HostTensor>, s: ModelSession) => out[s.outputs[0].name];
  const textBatch = textEncoder.fixedBatch('input_ids');
  // the naive baseline runs guidance as two batch-1 calls, as a batch-1 export must
  const unetBatch = naive ? 1 : unet.fixedBatch('sample');
  return {
    device: m.deviceLoop === true ? deviceModels(m.sessions) : null,
    hostLoopReason: m.deviceLoop === true ? undefined : m.deviceLoop,
    scalingFactor: m.config.scalingFactor,
    latentChannels: m.config.latentChannels,
    vaeScaleFactor: m.vaeScaleFactor,
    unetInChannels: m.unetInChannels,
    async encodeText(ids) {
      // Exports with a fixed batch of 1 get one call per prompt.
      const groups = textBatch === 1 ? ids.map((x) => [x]) : [ids];
      const parts: HostTensor[] = [];
      for (const g of groups) {
        const data = new Int32Array(g.length * g[0].length);
        g.forEach((x, i) => data.set(x, i * x.length));
        parts.push(first(await textEncoder.run({ input_ids: { data, dims: [g.length, g[0].length] } }), textEncoder));
      }
      return concatBatch(parts);
    },
    async predictNoise(sample, timestep, text) {
      const batch = sample.dims[0];
      const runOne = async (s: HostTensor, e: HostTensor) => {
        const b = s.dims[0];
        const out = await unet.run({
          sample: s,
          timestep: { data: new Float32Array(b).fill(timestep), dims: [b] },
          encoder_hidden_states: e,
        });
        return first(out, unet).data as Float32Array;
      };
      if (unetBatch === null || unetBatch === batch) return runOne(sample, text);
      // A UNet fixed to batch 1 under guidance: one call per half, one after the other (a session runs one call at a time).
      const parts: Float32Array[] = [];
      for (let i = 0; i < batch; i++) parts.push(await runOne(sliceBatch(sample, i), sliceBatch(text, i)));
      return concatBatch(parts.map((p) => ({ data: p, dims: [1, p.length] }))).data as Float32Array;
    },
    async encodeImage(image) {
      if (!vaeEncoder) throw new Error(`the model ${m.source.id} has no VAE encoder, so it cannot take an init image (img2img and inpaint); use text2img or another model`);
      return first(await vaeEncoder.run({ [vaeEncoder.inputs[0].name]: image }), vaeEncoder);
    },
    async decodeLatents(latents) {
      return first(await vaeDecoder.run({ [vaeDecoder.inputs[0].name]: latents }), vaeDecoder);
    },
  };
}

/** The device loop's operations over the UNet (outputs on the GPU) and the helper sessions. */
function deviceModels(s: Sessions): DeviceModels {
  const { unet, latentStep, latentStepRead, toDevice } = s;
  if (!latentStep || !latentStepRead || !toDevice) throw new Error('the device loop needs its helper sessions');
  // The device tensors the loop hands back are the ORT tensors these sessions made.
  const ortTensor = (t: HostTensor | DeviceTensor) => t as HostTensor | GpuTensor;
  return {
    async upload(text) {
      return (await toDevice.runMixed({ x: text })).y;
    },
    async predictNoise(sample, timestep, text) {
      const b = sample.dims[0];
      const out = await unet.runMixed({ sample: ortTensor(sample), timestep: { data: new Float32Array(b).fill(timestep), dims: [b] }, encoder_hidden_states: ortTensor(text) });
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

function sliceBatch(t: HostTensor, i: number): HostTensor {
  const per = t.data.length / t.dims[0];
  return { data: t.data.slice(i * per, (i + 1) * per), dims: [1, ...t.dims.slice(1)] };
}

function concatBatch(parts: HostTensor[]): HostTensor {
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  const data = new Float32Array(total);
  let off = 0;
  for (const p of parts) {
    data.set(p.data, off);
    off += p.data.length;
  }
  return { data, dims: [parts.reduce((n, p) => n + p.dims[0], 0), ...parts[0].dims.slice(1)] };
}
