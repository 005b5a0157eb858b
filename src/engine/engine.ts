/**
 * The engine: loads a model set into ORT sessions and runs jobs through the pipeline.
 * DOM-free, ORT injected: the worker runs it on onnxruntime-web, tests on onnxruntime-node.
 */
import { createClipTokenizer } from './tokenizer.ts';
import { createTorchGenerator } from './random.ts';
import { rgbaToTensor, tensorToRgb } from './image-tensor.ts';
import { encodeRgbPng } from './png.ts';
import { runImg2Img, type DiffusionModels } from './pipeline.ts';
import { createModelSession, errorText, type Backend, type BackendChoice, type HostTensor, type ModelSession, type OrtModule } from './runtime.ts';
import type { EngineProgress, GenerationJob, GenerationResult } from './jobs.ts';
import { GRAPH_FILES, readModelConfig, type ModelConfig } from '../models/model-config.ts';
import type { ModelSource } from '../models/model-source.ts';
import type { ModelStore } from '../models/model-store.ts';

export interface LoadedModelInfo {
  id: string;
  backend: Backend;
  backendReason: string;
  schedulerClass: string;
  /** Input dtypes as the sessions declare them, for display and diagnostics. */
  inputTypes: Record<string, string>;
}

interface LoadedModel {
  source: ModelSource;
  config: ModelConfig;
  tokenizer: ReturnType<typeof createClipTokenizer>;
  sessions: { textEncoder: ModelSession; unet: ModelSession; vaeEncoder: ModelSession; vaeDecoder: ModelSession };
  backend: BackendChoice;
}

export type ProgressSink = (p: EngineProgress) => void;

export class Engine {
  private model: LoadedModel | null = null;

  constructor(
    private readonly ort: OrtModule,
    private readonly store: ModelStore,
    private backend: BackendChoice,
  ) {}

  get loadedModelId(): string | null {
    return this.model?.source.id ?? null;
  }

  /** Loads every file of the model (cache first) and creates its sessions; on WebGPU failure falls back to WASM and says why. */
  async loadModel(source: ModelSource, onProgress?: ProgressSink): Promise<LoadedModelInfo> {
    if (this.model?.source.id === source.id && this.model.source.baseUrl === source.baseUrl) return this.info(this.model);
    await this.unload();
    const bytes = new Map<string, Uint8Array>();
    for (const file of source.files) {
      bytes.set(file.path, await this.store.getFile(source, file, (p) => onProgress?.({ phase: 'download', ...p })));
    }
    const decoder = new TextDecoder();
    const config = await readModelConfig(async (path) => (bytes.has(path) ? decoder.decode(bytes.get(path)) : null));
    const tokenizer = createClipTokenizer(config.tokenizer.vocab, config.tokenizer.merges, {
      maxLength: config.tokenizer.maxLength,
      padTokenId: config.tokenizer.padTokenId,
    });
    const graph = (path: string) => {
      const b = bytes.get(path);
      if (!b) throw new Error(`${source.id}: the model has no ${path}`);
      return b;
    };
    let sessions: LoadedModel['sessions'];
    try {
      onProgress?.({ phase: 'load', modelId: source.id, message: `creating sessions on ${this.backend.backend}` });
      sessions = await this.createSessions(graph, this.backend.backend);
    } catch (e) {
      if (this.backend.backend !== 'webgpu') throw e;
      this.backend = { backend: 'wasm', shaderF16: false, reason: `WebGPU could not run this model (${errorText(e)}); using WASM` };
      onProgress?.({ phase: 'load', modelId: source.id, message: this.backend.reason });
      sessions = await this.createSessions(graph, 'wasm');
    }
    this.model = { source, config, tokenizer, sessions, backend: this.backend };
    return this.info(this.model);
  }

  private async createSessions(graph: (path: string) => Uint8Array, backend: Backend): Promise<LoadedModel['sessions']> {
    const opts = { ort: this.ort, backend };
    return {
      textEncoder: await createModelSession('text_encoder', graph(GRAPH_FILES.textEncoder), opts),
      unet: await createModelSession('unet', graph(GRAPH_FILES.unet), opts),
      vaeEncoder: await createModelSession('vae_encoder', graph(GRAPH_FILES.vaeEncoder), opts),
      vaeDecoder: await createModelSession('vae_decoder', graph(GRAPH_FILES.vaeDecoder), opts),
    };
  }

  async unload(): Promise<void> {
    const m = this.model;
    this.model = null;
    if (m) await Promise.all(Object.values(m.sessions).map((s) => s.release()));
  }

  private info(m: LoadedModel): LoadedModelInfo {
    const inputTypes: Record<string, string> = {};
    for (const [component, s] of Object.entries(m.sessions)) for (const i of s.inputs) inputTypes[`${component}.${i.name}`] = i.type;
    return { id: m.source.id, backend: m.backend.backend, backendReason: m.backend.reason, schedulerClass: m.config.schedulerClass, inputTypes };
  }

  async generate(job: GenerationJob, onProgress?: ProgressSink, shouldStop?: () => boolean): Promise<GenerationResult> {
    const m = this.model;
    if (!m) throw new Error('no model is loaded');
    const started = performance.now();
    const cond = m.tokenizer.encodeDetailed(job.prompt);
    const uncond = m.tokenizer.encodeDetailed(job.negativePrompt);
    const models = diffusionModels(m);
    const image = rgbaToTensor(job.initImage.rgba, job.width, job.height);
    const schedulerName = job.scheduler ?? m.config.schedulerClass;
    const schedulerConfig = { ...m.config.schedulerConfig, ...job.schedulerOverrides };
    const images: Uint8Array[] = [];
    const seeds: number[] = [];
    let denoiseSeconds = 0;
    let stepsRun = 0;
    for (let i = 0; i < job.samples; i++) {
      const seed = job.seed + i;
      seeds.push(seed);
      const loopStart = performance.now();
      const decoded = await runImg2Img(models, {
        condIds: cond.ids,
        uncondIds: uncond.ids,
        image,
        width: job.width,
        height: job.height,
        steps: job.steps,
        strength: job.strength,
        guidanceScale: job.guidanceScale,
        schedulerName,
        schedulerConfig,
        rng: createTorchGenerator(seed),
      }, {
        shouldStop,
        onStep: (p) => {
          stepsRun++;
          onProgress?.({ phase: 'denoise', sample: i + 1, samples: job.samples, step: p.step, totalSteps: p.totalSteps });
        },
      });
      denoiseSeconds += (performance.now() - loopStart) / 1000;
      onProgress?.({ phase: 'decode', sample: i + 1, samples: job.samples });
      const [, , h, w] = decoded.dims;
      images.push(encodeRgbPng(tensorToRgb(decoded.data as Float32Array, w, h), w, h));
    }
    return {
      images,
      seeds,
      width: job.width,
      height: job.height,
      scheduler: schedulerName,
      promptTruncated: cond.truncated,
      timings: { total: (performance.now() - started) / 1000, denoise: denoiseSeconds, stepsRun },
    };
  }
}

/** The pipeline's view of a loaded model set: I/O names and batch limits read from the sessions. */
function diffusionModels(m: LoadedModel): DiffusionModels {
  const { textEncoder, unet, vaeEncoder, vaeDecoder } = m.sessions;
  const first = (out: Record<string, HostTensor>, s: ModelSession) => out[s.outputs[0].name];
  const textBatch = textEncoder.fixedBatch('input_ids');
  const unetBatch = unet.fixedBatch('sample');
  return {
    scalingFactor: m.config.scalingFactor,
    latentChannels: m.config.latentChannels,
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
      // A UNet fixed to batch 1 under guidance: one call per half.
      const parts = await Promise.all(Array.from({ length: batch }, (_, i) => i).map(async (i) =>
        runOne(sliceBatch(sample, i), sliceBatch(text, i))));
      return concatBatch(parts.map((p, i) => ({ data: p, dims: [1, ...sample.dims.slice(1)] }))).data as Float32Array;
    },
    async encodeImage(image) {
      return first(await vaeEncoder.run({ [vaeEncoder.inputs[0].name]: image }), vaeEncoder);
    },
    async decodeLatents(latents) {
      return first(await vaeDecoder.run({ [vaeDecoder.inputs[0].name]: latents }), vaeDecoder);
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
