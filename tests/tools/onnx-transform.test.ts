/**
 * The graph rewrites that make replicas of real exports: fp16 internals (with and without float32
 * I/O kept) compute what the float32 graph computes, to fp16 precision; inputs and outputs take
 * the real exports' names, element types and fixed dims, and the graph still computes the same.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readGraphInfo } from '../../src/models/onnx-graph.ts';
import { float32ToFloat16, float16ToFloat32 } from '../../src/engine/float16.ts';
import { adaptIo, decodeModel, encodeModel, toFloat16 } from '../../tools/onnx/transform.ts';
import { DType } from '../../tools/onnx/proto.ts';
import { TinyModelFactory } from '../../tools/tiny-models/sets.ts';

const files = new Map(new TinyModelFactory().setFiles('tiny-sd').map((f) => [f.path, f.bytes]));
const unetBytes = files.get('unet/model.onnx')!;

function feeds(batch: number): Record<string, ort.Tensor> {
  const sample = Float32Array.from({ length: batch * 4 * 8 * 8 }, (_, i) => Math.sin(i * 0.37));
  const text = Float32Array.from({ length: batch * 77 * 32 }, (_, i) => Math.cos(i * 0.11) * 0.5);
  return {
    sample: new ort.Tensor('float32', sample, [batch, 4, 8, 8]),
    timestep: new ort.Tensor('int64', new BigInt64Array(batch).fill(500n), [batch]),
    encoder_hidden_states: new ort.Tensor('float32', text, [batch, 77, 32]),
  };
}

async function run(bytes: Uint8Array, f: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(f);
  const t = out[session.outputNames[0]];
  await session.release();
  return t.type === 'float16' ? float16ToFloat32(t.data as Uint16Array) : (t.data as Float32Array);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('toFloat16', () => {
  it('keeps float32 I/O, computes in fp16 inside, and matches the float32 graph to fp16 precision', async () => {
    const reference = await run(unetBytes, feeds(1));
    const half = encodeModel(toFloat16(decodeModel(unetBytes)));
    const info = readGraphInfo(half);
    expect(info.inputs.map((i) => i.type)).toEqual(['float32', 'int64', 'float32']);
    expect(info.outputs.map((o) => o.type)).toEqual(['float32']);
    expect(half.byteLength).toBeLessThan(unetBytes.byteLength * 0.6);
    const out = await run(half, feeds(1));
    expect(out.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(out, reference)).toBeLessThan(0.05);
  });

  it('without kept I/O takes and returns float16', async () => {
    const half = encodeModel(toFloat16(decodeModel(unetBytes), { keepIoTypes: false }));
    expect(readGraphInfo(half).inputs.find((i) => i.name === 'sample')?.type).toBe('float16');
    const f = feeds(1);
    const as16 = (t: ort.Tensor) => new ort.Tensor('float16', float32ToFloat16(t.data as Float32Array), t.dims);
    const out = await run(half, { sample: as16(f.sample), timestep: f.timestep, encoder_hidden_states: as16(f.encoder_hidden_states) });
    expect(maxAbsDiff(out, await run(unetBytes, f))).toBeLessThan(0.05);
  });
});

describe('adaptIo', () => {
  it('gives inputs the real export\'s types and fixed dims, renames outputs, and computes the same', async () => {
    const adapted = encodeModel(adaptIo(decodeModel(unetBytes), {
      inputs: { timestep: { type: DType.FLOAT16, dims: [2] }, sample: { dims: [2, 4, 8, 8] } },
      outputs: { out_sample: { name: 'noise', dims: [2, 4, 8, 8] } },
    }));
    const info = readGraphInfo(adapted);
    expect(info.inputs.find((i) => i.name === 'timestep')).toEqual({ name: 'timestep', type: 'float16', dims: [2] });
    expect(info.inputs.find((i) => i.name === 'sample')?.dims).toEqual([2, 4, 8, 8]);
    expect(info.outputs).toEqual([{ name: 'noise', type: 'float32', dims: [2, 4, 8, 8] }]);
    const f = feeds(2);
    const out = await run(adapted, { ...f, timestep: new ort.Tensor('float16', float32ToFloat16(Float32Array.of(500, 500)), [2]) });
    expect(maxAbsDiff(out, await run(unetBytes, f))).toBeLessThan(1e-5);
  });
});
