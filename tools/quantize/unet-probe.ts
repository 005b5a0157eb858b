/**
 * Fixed UNet inputs and the similarity of two outputs: how the tests and the bench compare a
 * quantized UNet with the one it came from, on the same seeded sample, timestep and text states.
 */
import { float32ToFloat16 } from '../../src/engine/float16.ts';
import { readGraphInfo } from '../../src/models/onnx-graph.ts';
import { Rng } from '../onnx/rng.ts';

export interface ProbeShape {
  batch: number;
  channels: number;
  /** Latent height and width. */
  height: number;
  width: number;
  /** Text tokens and their features (encoder_hidden_states' last two dims). */
  sequence: number;
  hidden: number;
}

export interface ProbeInputs {
  shape: ProbeShape;
  /** [batch, channels, height, width] */
  sample: Float32Array;
  /** One timestep for the whole batch, as the pipeline passes it. */
  timestep: number;
  /** [batch, sequence, hidden] */
  encoderHiddenStates: Float32Array;
  /** The graph's element type of `timestep` ('int64', 'float32' or 'float16'). */
  timestepType: string;
  /** The graph's element type of sample and encoder_hidden_states. */
  floatType: string;
}

/** SD's text length. */
export const TEXT_TOKENS = 77;

/**
 * Reads channels, text width and I/O types from the UNet's declared inputs and fills seeded values
 * (unit-variance latents as at the start of sampling, text states of the spread CLIP's have, t = 500).
 */
export function probeInputs(graph: Uint8Array, size: { batch: number; height: number; width: number }, seed = 1): ProbeInputs {
  const info = readGraphInfo(graph);
  const find = (name: string) => {
    const v = info.inputs.find((i) => i.name === name);
    if (!v) throw new Error(`the UNet has no input ${name}`);
    return v;
  };
  const sample = find('sample');
  const text = find('encoder_hidden_states');
  const channels = sample.dims[1];
  const hidden = text.dims[2];
  if (typeof channels !== 'number' || typeof hidden !== 'number') throw new Error('the UNet does not fix its channels and text width');
  const sequence = typeof text.dims[1] === 'number' ? text.dims[1] : TEXT_TOKENS;
  const shape: ProbeShape = { ...size, channels, sequence, hidden };
  const rng = new Rng(seed, 'unet-probe');
  return {
    shape,
    sample: Float32Array.from({ length: size.batch * channels * size.height * size.width }, () => rng.unit()),
    timestep: 500,
    encoderHiddenStates: Float32Array.from({ length: size.batch * sequence * hidden }, () => rng.unit()),
    timestepType: find('timestep').type,
    floatType: sample.type,
  };
}

export interface TensorData {
  type: 'float32' | 'float16' | 'int64';
  data: Float32Array | Uint16Array | BigInt64Array;
  dims: number[];
}

/** The inputs as onnxruntime wants them, typed as the graph declares (`new ort.Tensor(t.type, t.data, t.dims)`). */
export function probeTensors(p: ProbeInputs): Record<'sample' | 'timestep' | 'encoder_hidden_states', TensorData> {
  const { batch, channels, height, width, sequence, hidden } = p.shape;
  const float = (values: Float32Array, dims: number[]): TensorData =>
    p.floatType === 'float16' ? { type: 'float16', data: float32ToFloat16(values), dims } : { type: 'float32', data: values, dims };
  const steps = new Float32Array(batch).fill(p.timestep);
  let timestep: TensorData;
  if (p.timestepType === 'int64') timestep = { type: 'int64', data: BigInt64Array.from(steps, (v) => BigInt(v)), dims: [batch] };
  else if (p.timestepType === 'float16') timestep = { type: 'float16', data: float32ToFloat16(steps), dims: [batch] };
  else timestep = { type: 'float32', data: steps, dims: [batch] };
  return {
    sample: float(p.sample, [batch, channels, height, width]),
    timestep,
    encoder_hidden_states: float(p.encoderHiddenStates, [batch, sequence, hidden]),
  };
}

/** cos(a, b) in double precision; 1 for two zero vectors (identical), 0 when only one is zero. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}

/** The accuracy targets for a quantized UNet's output against the float one. */
export function cosineTarget(bits: number): number {
  return bits === 8 ? 0.995 : 0.98;
}
