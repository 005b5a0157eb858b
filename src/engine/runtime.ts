/**
 * onnxruntime sessions: which backend runs them and why, and conversion between the
 * pipeline's float32/int arrays and whatever dtypes the model's own inputs declare.
 * The ORT module is injected so the same engine runs on onnxruntime-web in the worker
 * and on onnxruntime-node in tests.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { float16ToFloat32, float32ToFloat16 } from './float16.ts';

export type OrtModule = typeof OrtWeb;
export type Backend = 'webgpu' | 'wasm' | 'cpu';

export interface BackendChoice {
  backend: Backend;
  /** Why this backend: shown to the user and reported in responses. */
  reason: string;
  /** Whether the WebGPU adapter can run fp16 shaders. */
  shaderF16: boolean;
}

/** The minimal slice of the WebGPU API the choice needs (navigator.gpu in a browser or worker). */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<{
    features: { has(name: string): boolean };
    info?: { vendor?: string; architecture?: string; description?: string };
  } | null>;
}

export type BackendPreference = 'auto' | 'webgpu' | 'wasm';

export async function chooseBackend(gpu: GpuLike | undefined, preference: BackendPreference = 'auto'): Promise<BackendChoice> {
  if (preference === 'wasm') return { backend: 'wasm', reason: 'WASM was requested', shaderF16: false };
  if (!gpu) return { backend: 'wasm', reason: 'WebGPU is not available in this browser (navigator.gpu is missing)', shaderF16: false };
  let adapter: Awaited<ReturnType<GpuLike['requestAdapter']>>;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { backend: 'wasm', reason: `WebGPU adapter request failed: ${errorText(e)}`, shaderF16: false };
  }
  if (!adapter) return { backend: 'wasm', reason: 'WebGPU is present but no adapter was found', shaderF16: false };
  const info = adapter.info;
  const name = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  const shaderF16 = adapter.features.has('shader-f16');
  return {
    backend: 'webgpu',
    reason: `WebGPU adapter found (${name}${shaderF16 ? ', shader-f16' : ', no shader-f16'})`,
    shaderF16,
  };
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A tensor on the host, in the pipeline's own types: float data as float32, integer data as numbers. */
export interface HostTensor {
  data: Float32Array | Int32Array;
  dims: number[];
}

type TensorType = OrtWeb.Tensor.Type;

/**
 * Host tensors that stay the same for a whole request (the prompt's conditioning). A session that
 * takes them as float16 converts them once, not on every step; nothing may write to them once marked.
 */
const constantTensors = new WeakSet<HostTensor>();

/** Marks every tensor of `tensors` constant for the rest of its life; returns `tensors`. */
export function markConstant<T extends Record<string, HostTensor>>(tensors: T): T {
  for (const t of Object.values(tensors)) constantTensors.add(t);
  return tensors;
}

export function isConstant(t: HostTensor): boolean {
  return constantTensors.has(t);
}

interface IoInfo {
  name: string;
  type: TensorType;
  shape: ReadonlyArray<number | string>;
}

/** An ORT tensor left where the session put it: a GPU buffer on WebGPU. Released with dispose(). */
export type GpuTensor = OrtWeb.Tensor;

/**
 * What sessions spend, summed over every session that shares it: time awaited inside session.run,
 * and bytes crossing between the host and the GPU (counted on WebGPU sessions only; WASM has no GPU).
 */
export class RunMeter {
  runSeconds = 0;
  runs = 0;
  uploadBytes = 0;
  readbackBytes = 0;

  snapshot(): { runSeconds: number; runs: number; uploadBytes: number; readbackBytes: number } {
    return { runSeconds: this.runSeconds, runs: this.runs, uploadBytes: this.uploadBytes, readbackBytes: this.readbackBytes };
  }
}

/** Reads a GPU tensor back to the host (onnxruntime-node cannot download one itself: see the to-host helper). */
export type Download = (t: GpuTensor) => Promise<OrtWeb.Tensor>;

/** One ORT session plus what its metadata says about its inputs and outputs. */
export class ModelSession {
  readonly inputs: IoInfo[];
  readonly outputs: IoInfo[];
  meter: RunMeter | null = null;
  /** float16 copies of constant host tensors, made on their first run. */
  private readonly halfCopies = new WeakMap<HostTensor, OrtWeb.Tensor>();
  /** How many float32 -> float16 conversions this session has made (the bench and tests read it). */
  halfConversions = 0;

  constructor(
    readonly label: string,
    private readonly ort: OrtModule,
    private readonly session: OrtWeb.InferenceSession,
    /** Whether the session runs on the GPU, so that host tensors in and out are transfers. */
    readonly onDevice = false,
    /** Set where the session leaves outputs in GPU buffers and run() must still return host tensors. */
    private readonly download: Download | null = null,
  ) {
    this.inputs = describe(session.inputNames, session.inputMetadata);
    this.outputs = describe(session.outputNames, session.outputMetadata);
  }

  input(name: string): IoInfo {
    const found = this.inputs.find((i) => i.name === name);
    if (!found) throw new Error(`${this.label}: the model has no input "${name}" (it has ${this.inputs.map((i) => i.name).join(', ')})`);
    return found;
  }

  hasInput(name: string): boolean {
    return this.inputs.some((i) => i.name === name);
  }

  /** The batch size the model is fixed to, or null where the batch dimension is free. */
  fixedBatch(inputName: string): number | null {
    const d = this.input(inputName).shape[0];
    return typeof d === 'number' && d > 0 ? d : null;
  }

  /** Runs with host tensors converted to the declared input dtypes; float outputs come back as float32. */
  async run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    const result = await this.runMixed(feeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(result)) {
      const host = t.location === 'gpu-buffer' && this.download ? await this.download(t) : t;
      out[name] = fromOrt(host);
      if (host !== t) t.dispose();
      host.dispose();
    }
    return out;
  }

  /**
   * Runs with any mix of host tensors and device tensors (another session's outputs, passed on as
   * they are) and returns ORT's tensors where the session left them; the caller disposes them.
   */
  async runMixed(feeds: Record<string, HostTensor | GpuTensor>): Promise<Record<string, OrtWeb.Tensor>> {
    const ortFeeds: Record<string, OrtWeb.Tensor> = {};
    let upload = 0;
    for (const [name, t] of Object.entries(feeds)) {
      if (isHostTensor(t)) {
        ortFeeds[name] = this.toOrt(this.input(name).type, t);
        upload += byteLength(ortFeeds[name]);
      } else {
        ortFeeds[name] = t;
      }
    }
    const started = performance.now();
    const result = await this.session.run(ortFeeds);
    const m = this.meter;
    if (m) {
      m.runSeconds += (performance.now() - started) / 1000;
      m.runs++;
      if (this.onDevice) {
        m.uploadBytes += upload;
        for (const t of Object.values(result)) if (t.location === 'cpu') m.readbackBytes += byteLength(t);
      }
    }
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private toOrt(type: TensorType, t: HostTensor): OrtWeb.Tensor {
    const { Tensor } = this.ort;
    switch (type) {
      case 'float32':
        return new Tensor('float32', t.data instanceof Float32Array ? t.data : Float32Array.from(t.data), t.dims);
      case 'float16': {
        const cached = this.halfCopies.get(t);
        if (cached) return cached;
        this.halfConversions++;
        const half = new Tensor('float16', float32ToFloat16(t.data), t.dims);
        if (isConstant(t)) this.halfCopies.set(t, half);
        return half;
      }
      // Fractional timesteps (Karras sigmas, linspace spacing) truncate, as numpy's astype in
      // diffusers' ONNX pipeline does.
      case 'int64':
        return new Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(Math.trunc(v))), t.dims);
      case 'int32':
        return new Tensor('int32', t.data instanceof Int32Array ? t.data : Int32Array.from(t.data, Math.trunc), t.dims);
      default:
        throw new Error(`${this.label}: input dtype ${type} is not supported`);
    }
  }
}

/** ORT tensors carry a location (and reading .data off a GPU one throws); the pipeline's host tensors do not. */
function isHostTensor(t: HostTensor | GpuTensor): t is HostTensor {
  return !('location' in t);
}

const ELEMENT_BYTES: Partial<Record<TensorType, number>> = { float32: 4, float16: 2, int64: 8, int32: 4, uint8: 1, bool: 1 };

function byteLength(t: OrtWeb.Tensor): number {
  return t.size * (ELEMENT_BYTES[t.type] ?? 4);
}

function describe(names: readonly string[], metadata: readonly OrtWeb.InferenceSession.ValueMetadata[] | undefined): IoInfo[] {
  return names.map((name, i) => {
    const m = metadata?.[i];
    if (m && m.isTensor) return { name, type: m.type, shape: m.shape };
    return { name, type: 'float32' as TensorType, shape: [] };
  });
}

function fromOrt(t: OrtWeb.Tensor): HostTensor {
  const dims = [...t.dims];
  switch (t.type) {
    case 'float32':
      return { data: t.data as Float32Array, dims };
    case 'float16': {
      const d = t.data as unknown; // Uint16Array bits, or Float16Array where the platform has it
      return { data: d instanceof Uint16Array ? float16ToFloat32(d) : Float32Array.from(d as ArrayLike<number>), dims };
    }
    case 'bool':
    case 'uint8':
    case 'int32':
      return { data: Int32Array.from(t.data as ArrayLike<number>), dims };
    case 'int64':
      return { data: Int32Array.from(t.data as BigInt64Array, (v) => Number(v)), dims };
    default:
      throw new Error(`output dtype ${t.type} is not supported`);
  }
}

export interface SessionFactoryOptions {
  ort: OrtModule;
  backend: Backend;
  /** Weights stored outside the graph (".onnx_data"), by the path the graph names them with. */
  externalData?: { path: string; data: Uint8Array }[];
  /** WebGPU only: leave outputs in GPU buffers ('gpu-buffer'), for all or by output name. */
  outputLocation?: 'gpu-buffer' | Record<string, 'cpu' | 'gpu-buffer'>;
  /** How run() reads back outputs left on the GPU. */
  download?: Download;
  /** Fixes symbolic dimensions the model leaves free (e.g. the text length) so ORT can plan for them. */
  freeDimensionOverrides?: Record<string, number>;
}

export async function createModelSession(
  label: string,
  bytes: Uint8Array,
  { ort, backend, externalData, outputLocation, download, freeDimensionOverrides }: SessionFactoryOptions,
): Promise<ModelSession> {
  const onDevice = backend === 'webgpu';
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [backend],
    graphOptimizationLevel: 'all',
    ...(externalData ? { externalData } : {}),
    ...(onDevice && outputLocation ? { preferredOutputLocation: outputLocation } : {}),
    ...(freeDimensionOverrides && Object.keys(freeDimensionOverrides).length > 0 ? { freeDimensionOverrides } : {}),
  });
  return new ModelSession(label, ort, session, onDevice, onDevice && outputLocation ? download ?? null : null);
}
