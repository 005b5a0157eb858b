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

interface IoInfo {
  name: string;
  type: TensorType;
  shape: ReadonlyArray<number | string>;
}

/** One ORT session plus what its metadata says about its inputs and outputs. */
export class ModelSession {
  readonly inputs: IoInfo[];
  readonly outputs: IoInfo[];

  constructor(
    readonly label: string,
    private readonly ort: OrtModule,
    private readonly session: OrtWeb.InferenceSession,
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
    const ortFeeds: Record<string, OrtWeb.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = this.toOrt(this.input(name).type, t);
    const result = await this.session.run(ortFeeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(result)) {
      out[name] = fromOrt(t);
      t.dispose();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private toOrt(type: TensorType, t: HostTensor): OrtWeb.Tensor {
    const { Tensor } = this.ort;
    switch (type) {
      case 'float32':
        return new Tensor('float32', t.data instanceof Float32Array ? t.data : Float32Array.from(t.data), t.dims);
      case 'float16':
        return new Tensor('float16', float32ToFloat16(t.data), t.dims);
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
}

export async function createModelSession(label: string, bytes: Uint8Array, { ort, backend, externalData }: SessionFactoryOptions): Promise<ModelSession> {
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [backend],
    graphOptimizationLevel: 'all',
    ...(externalData ? { externalData } : {}),
  });
  return new ModelSession(label, ort, session);
}
