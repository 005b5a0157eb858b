/**
 * The engine: loads a model set into ORT sessions and runs jobs through the pipeline.
 * DOM-free, ORT injected: the worker runs it on onnxruntime-web, tests on onnxruntime-node.
 */
import { createClipTokenizer } from './tokenizer.ts';
import { createTorchGenerator } from './random.ts';
import { rgbaToTensor, tensorToRgb } from './image-tensor.ts';
import { binariseMask } from './inpaint-mask.ts';
import { applyOverlay } from './outpaint-canvas.ts';
import { Upscaler, type UpscaledImage } from './super-resolution.ts';
import { encodeRgbPng } from './png.ts';
import { runPipeline, usesGuidance, type GenerationInput } from './pipelines/denoising-loop.ts';
import { encodePrompt, type FamilyEncoders } from './pipelines/index.ts';
import { createModelSession, errorText, markConstant, RunMeter, type Backend, type BackendChoice, type GpuTensor, type ModelSession, type OrtModule, type SessionFactoryOptions } from './runtime.ts';
import { OnnxParseError, textLengthOverrides, type GraphInfo } from '../models/onnx-graph.ts';
import { describeModel, type GraphComponent, type ModelDescriptor, type ModelLimits } from '../models/model-descriptor.ts';
import { isGraphFile, modelFiles, type ModelFiles } from './model-files.ts';
import { deviceModels, diffusionModels, sessionTextEncoder } from './session-models.ts';
import { emptyLoopStats, LoopRecorder, type LoopStats } from './loop-stats.ts';
import { readClipPreprocessConfig, SAFETY_CHECKER_FILES, SafetyChecker } from './safety-checker.ts';
import { LivePreview, TaesdDecoder } from './preview.ts';
import type { EngineProgress, GenerationJob, GenerationResult, ProgressSink, RgbaImage } from './jobs.ts';
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
  /** What the model's graphs allow (modes, a fixed size): requests outside it are refused before they queue. */
  limits: ModelLimits;
  family: ModelDescriptor['family'];
}

type HelperSessions = Pick<Sessions, 'latentStep' | 'latentStepRead' | 'toDevice' | 'toHost'>;

interface CreatedSessions {
  sessions: Sessions;
  deviceLoop: true | string;
  /** Each graph's declared I/O, for the model's descriptor. */
  graphs: Partial<Record<GraphComponent, GraphInfo>>;
}

interface Sessions {
  textEncoder: ModelSession;
  /** SDXL's second text encoder (OpenCLIP bigG with projection). */
  textEncoder2?: ModelSession;
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
  descriptor: ModelDescriptor;
  /** The family's text encoders with their tokenizers. */
  encoders: FamilyEncoders;
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

export class Engine {
  private model: LoadedModel | null = null;
  /** Where TAESD's decoder lives (the model set "taesd"); null: previews use the linear approximation. */
  private previewSource: ModelSource | null = null;
  private taesd: Promise<TaesdDecoder | null> | null = null;
  /** The super-resolution graphs (model set "esrgan": x2.onnx, x3.onnx, x4.onnx); null: no upscaling here. */
  private upscalerSource: ModelSource | null = null;
  /** One session per factor, made on first use and kept (each is under a megabyte). */
  private readonly upscalers = new Map<number, Promise<Upscaler>>();

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
    const tokenizers = config.tokenizers.map((t) => createClipTokenizer(t.vocab, t.merges, { maxLength: t.maxLength, padTokenId: t.padTokenId }));
    const textLength = config.tokenizers[0].maxLength;
    const files = modelFiles(this.store, source);
    const preprocessor = jsonFile(bytes, SAFETY_CHECKER_FILES.preprocessor);
    if (files.has(SAFETY_CHECKER_FILES.graph) && !preprocessor) throw new Error(`${source.id}: the model has a safety checker but no ${SAFETY_CHECKER_FILES.preprocessor}`);
    let created: Awaited<ReturnType<Engine['createSessions']>> | null = null;
    for (let attempt = 0; !created; attempt++) {
      try {
        created = await this.createOnAnyBackend(files, textLength, source.id, onProgress);
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
    const { sessions, deviceLoop, graphs } = created;
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
      await Promise.all((Object.values(sessions) as ModelSession[]).map((s) => s.release().catch(() => undefined)));
      throw e;
    }
    const vae = jsonFile(bytes, 'vae_decoder/config.json') ?? jsonFile(bytes, 'vae_encoder/config.json');
    const blocks = vae?.block_out_channels;
    const vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : 8;
    const descriptor = describeModel({ modelIndex: config.modelIndex, graphs, vaeScaleFactor });
    const configChannels = jsonFile(bytes, 'unet/config.json')?.in_channels;
    const unetInChannels = descriptor.unet.inChannels ?? (typeof configChannels === 'number' ? configChannels : config.latentChannels);
    const textEncoders = [sessions.textEncoder, ...(sessions.textEncoder2 ? [sessions.textEncoder2] : [])];
    if (textEncoders.length > tokenizers.length) {
      await Promise.all((Object.values(sessions) as ModelSession[]).map((s) => s.release().catch(() => undefined)));
      throw new Error(`${source.id}: the model has ${textEncoders.length} text encoders but ${tokenizers.length} tokenizer folder(s); text_encoder_2 needs tokenizer_2/`);
    }
    const encoders: FamilyEncoders = {
      family: descriptor.family,
      encoders: textEncoders.map((session, i) => sessionTextEncoder(session, tokenizers[i])),
      forceZerosForEmptyPrompt: descriptor.forceZerosForEmptyPrompt,
    };
    this.model = { source, config, descriptor, encoders, sessions, deviceLoop, safetyChecker, vaeScaleFactor, unetInChannels, backend: this.backend, loadTimings };
    return this.info(this.model);
  }

  /** Sessions on the chosen backend; where WebGPU cannot run the model, on WASM, saying why. */
  private async createOnAnyBackend(files: ModelFiles, textLength: number, modelId: string, onProgress?: ProgressSink): Promise<CreatedSessions> {
    try {
      onProgress?.({ phase: 'load', modelId, message: `creating sessions on ${this.backend.backend}` });
      return await this.createSessions(files, this.backend.backend, textLength);
    } catch (e) {
      if (this.backend.backend !== 'webgpu' || e instanceof UnreadableGraphError) throw e;
      // fp16 exports compute in float16, which WebGPU runs only on adapters with shader-f16
      const reason = !this.backend.shaderF16 && /\bf16\b|float16/i.test(errorText(e))
        ? 'this model computes in float16 and the WebGPU adapter has no shader-f16, so it runs on WASM (on the CPU)'
        : `WebGPU could not run this model (${errorText(e)}); using WASM`;
      this.backend = { backend: 'wasm', shaderF16: false, reason };
      onProgress?.({ phase: 'load', modelId, message: this.backend.reason });
      return this.createSessions(files, 'wasm', textLength);
    }
  }

  /** Every session of the model; on any failure the ones already made are released before it is rethrown. */
  private async createSessions(files: ModelFiles, backend: Backend, textLength: number): Promise<CreatedSessions> {
    const made: ModelSession[] = [];
    try {
      return await this.createSessionsInto(made, files, backend, textLength);
    } catch (e) {
      await Promise.all(made.map((m) => m.release().catch(() => undefined)));
      throw e;
    }
  }

  private async createSessionsInto(made: ModelSession[], files: ModelFiles, backend: Backend, textLength: number): Promise<CreatedSessions> {
    const graphs: Partial<Record<GraphComponent, GraphInfo>> = {};
    const create = async (label: GraphComponent, path: string, device: Pick<SessionFactoryOptions, 'outputLocation' | 'download'> = {}) => {
      let session: ModelSession;
      try {
        // Weights may be inline or in external-data shards the graph names (model.onnx_data, _1, _2, …).
        const { bytes, info, externalData } = await files.graph(path);
        graphs[label] = info;
        // The text length is the one shape every request shares; batch and image size stay free.
        const freeDimensionOverrides = textLengthOverrides(info.inputs, textLength);
        session = await createModelSession(label, bytes, { ort: this.ort, backend, externalData, freeDimensionOverrides, ...device });
      } catch (e) {
        if (isUnreadableGraph(e)) throw new UnreadableGraphError(path, e);
        throw e;
      }
      made.push(session);
      return session;
    };
    const textEncoder = await create('text_encoder', GRAPH_FILES.textEncoder);
    const textEncoder2 = files.has(GRAPH_FILES.textEncoder2) ? await create('text_encoder_2', GRAPH_FILES.textEncoder2) : undefined;
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
    const sessions: Sessions = { textEncoder, ...(textEncoder2 ? { textEncoder2 } : {}), unet, vaeDecoder: await create('vae_decoder', GRAPH_FILES.vaeDecoder), ...helpers };
    if (files.has(GRAPH_FILES.vaeEncoder)) sessions.vaeEncoder = await create('vae_encoder', GRAPH_FILES.vaeEncoder);
    if (files.has(SAFETY_CHECKER_FILES.graph)) sessions.safetyChecker = await create('safety_checker', SAFETY_CHECKER_FILES.graph);
    const unetBatch = sessions.unet.fixedBatch('sample');
    if (deviceLoop === true && unetBatch !== null) deviceLoop = `the UNet export fixes its batch to ${unetBatch}; the device loop runs guidance as one batch-2 call`;
    return { sessions, deviceLoop, graphs };
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

  setUpscalerModel(source: ModelSource | null): void {
    this.upscalerSource = source;
    const old = [...this.upscalers.values()];
    this.upscalers.clear();
    for (const u of old) void u.then((x) => x.release()).catch(() => undefined);
  }

  /**
   * Super resolution of an image by 2, 3 or 4, in tiles. Progress reports each tile; its answer
   * `true` (the job was cancelled) stops the upscale before the next tile but one at the latest.
   */
  async upscale(image: RgbaImage, scale: number, onProgress?: ProgressSink, shouldStop?: () => boolean): Promise<UpscaledImage> {
    const source = this.upscalerSource;
    if (!source) throw new Error('super resolution is not available: this build has no ESRGAN graphs (npm run models makes them)');
    const file = source.files.find((f) => f.path === `x${scale}.onnx`);
    if (!file) throw new Error(`super resolution by ${scale} is not available (the upscaler has ${source.files.map((f) => f.path).join(', ')})`);
    let upscaler = this.upscalers.get(scale);
    if (!upscaler) {
      upscaler = (async () => Upscaler.create(`esrgan-x${scale}`, await this.store.getFile(source, file), { ort: this.ort, backend: this.backend.backend }))();
      // a failed load is not remembered: the next request tries again
      upscaler.catch(() => this.upscalers.delete(scale));
      this.upscalers.set(scale, upscaler);
    }
    let stopAnswered = false;
    return (await upscaler).upscale({ data: image.rgba, width: image.width, height: image.height }, {
      shouldStop: () => stopAnswered || (shouldStop?.() ?? false),
      onProgress: (tile, tiles) => {
        void Promise.resolve(onProgress?.({ phase: 'upscale', tile, tiles })).then((answer) => {
          if (answer === true) stopAnswered = true;
        }, () => undefined);
      },
    });
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
    const { modes, fixedSize } = m.descriptor;
    return {
      id: m.source.id, backend: m.backend.backend, backendReason: m.backend.reason, schedulerClass: m.config.schedulerClass, inputTypes,
      deviceLoop: m.deviceLoop, loadTimings: m.loadTimings, limits: { modes, fixedSize }, family: m.descriptor.family,
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
    // One encoding per request: every sample shares the prompt's conditioning.
    const prompt = await encodePrompt(m.encoders, {
      prompt: job.prompt, negativePrompt: job.negativePrompt, guided: usesGuidance(job.guidanceScale), width: job.width, height: job.height,
    });
    // ... and, for an fp16 UNet, one float16 conversion of it per request rather than one per step
    markConstant(prompt.conditioning);
    const s = m.sessions;
    const device = m.deviceLoop === true && s.latentStep && s.latentStepRead && s.toDevice
      ? deviceModels({ unet: s.unet, latentStep: s.latentStep, latentStepRead: s.latentStepRead, toDevice: s.toDevice })
      : null;
    const models = diffusionModels({
      unet: s.unet, vaeEncoder: s.vaeEncoder, vaeDecoder: s.vaeDecoder, scalingFactor: m.config.scalingFactor, latentChannels: m.config.latentChannels,
      vaeScaleFactor: m.vaeScaleFactor, unetInChannels: m.unetInChannels, naive: this.loopPreference === 'naive', device,
      hostLoopReason: m.deviceLoop === true ? undefined : m.deviceLoop, modelId: m.source.id,
    });
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
    let stopAnswered = false;
    for (let i = 0; i < job.samples; i++) {
      const seed = job.seed + i;
      seeds.push(seed);
      const loopStart = performance.now();
      const live = onProgress ? new LivePreview(taesd) : null;
      const recorder = new LoopRecorder(meter, loop);
      const decoded = await runPipeline(models, {
        conditioning: prompt.conditioning,
        width: job.width,
        height: job.height,
        steps: job.steps,
        guidanceScale: job.guidanceScale,
        schedulerName,
        schedulerConfig,
        rng: createTorchGenerator(seed),
        input,
      }, {
        shouldStop: () => stopAnswered || (shouldStop?.() ?? false),
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
          // Waiting for the page's answer keeps the loop at most one step ahead of what it shows.
          const answer = await Promise.resolve(
            onProgress?.({ phase: 'denoise', sample: i + 1, samples: job.samples, step: p.step, totalSteps: p.totalSteps, ...(preview ? { preview } : {}) }),
          ).catch(() => undefined);
          if (answer === true) stopAnswered = true;
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
      if (job.mode === 'inpaint' && job.overlay && !nsfw[i]) applyOverlay(rgb, job.overlay);
      images.push(encodeRgbPng(rgb, w, h));
    }
    return {
      images,
      seeds,
      width: job.width,
      height: job.height,
      scheduler: schedulerName,
      promptTruncated: prompt.truncated,
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

function checkImageSize(image: RgbaImage, job: GenerationJob, what: string): void {
  if (image.width !== job.width || image.height !== job.height || image.rgba.length !== job.width * job.height * 4) {
    throw new Error(`the ${what} is ${image.width}x${image.height}, the job is ${job.width}x${job.height}`);
  }
}

function imageTensor(image: RgbaImage, job: GenerationJob, what: string): Float32Array {
  checkImageSize(image, job, what);
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
      // the mask is read once, straight to its 0/1 form
      checkImageSize(job.maskImage, job, 'mask image');
      return { mode: 'inpaint', image, mask: binariseMask(job.maskImage.rgba, job.width, job.height), strength: job.strength };
    }
  }
}
