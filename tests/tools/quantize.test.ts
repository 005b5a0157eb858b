// tools/quantize: the MatMulNBits packing against hand-computed bytes and against onnxruntime's own
// kernels, the graph rewrite (MatMul, every Gemm form, float16 weights), tiny-sd quantized at 4 and 8
// bits with blocks of 32 and 128 (loads, op kinds, size, output similarity), and sharded external data.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHalfBits, toHalfBits } from '../../src/engine/float16.ts';
import { nodeWebgpuUnavailableReason } from '../../tools/node-webgpu.ts';
import { onnx, type OnnxTypes } from '../../tools/onnx/proto.ts';
import { Rng } from '../../tools/onnx/rng.ts';
import { TinyModelFactory } from '../../tools/tiny-models/sets.ts';
import { quantizeMatrix, type QuantBits, type QuantizedMatrix } from '../../tools/quantize/block-quant.ts';
import { parseArgs } from '../../tools/quantize/cli.ts';
import { quantizeModelDir, UNET_GRAPH } from '../../tools/quantize/quantize-model.ts';
import { rewriteToMatMulNBits } from '../../tools/quantize/rewrite.ts';
import { DEFAULT_SCHEME } from '../../tools/quantize/scheme.ts';
import { INLINE_BELOW_BYTES, SHARD_ALIGNMENT, writeShards } from '../../tools/quantize/shard-writer.ts';
import { TensorSource } from '../../tools/quantize/tensor-data.ts';
import { cosineSimilarity, cosineTarget, probeInputs, probeTensors } from '../../tools/quantize/unet-probe.ts';

const WEBGPU_UNAVAILABLE = await nodeWebgpuUnavailableReason();
if (WEBGPU_UNAVAILABLE) console.info(`quantize: WebGPU checks skipped, no WebGPU adapter for onnxruntime-node: ${WEBGPU_UNAVAILABLE}`);

const AttrType = onnx.AttributeProto.AttributeType;
const DType = onnx.TensorProto.DataType;

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function valueInfo(name: string, elemType: number, dims: number[]): OnnxTypes.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

function tensor(name: string, dims: number[], dataType: number, data: Uint8Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType, rawData: data };
}

function modelOf(graph: OnnxTypes.IGraphProto, msDomain = false): OnnxTypes.IModelProto {
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, ...(msDomain ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    graph,
  };
}

const encode = (m: OnnxTypes.IModelProto) => onnx.ModelProto.encode(m).finish();

function randomFloats(key: string, n: number, std = 1): Float32Array {
  const rng = new Rng(7, key);
  return Float32Array.from({ length: n }, () => std * rng.unit());
}

function matmul(a: Float32Array, w: Float32Array, M: number, K: number, N: number): Float32Array {
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const av = a[m * K + k];
      for (let n = 0; n < N; n++) out[m * N + n] += av * w[k * N + n];
    }
  }
  return out;
}

/** Code `i` of a low-bits-first packed stream at `start`, as the op's layout describes it. */
function codeAt(bytes: Uint8Array, start: number, i: number, bits: number): number {
  if (bits === 8) return bytes[start + i];
  const byte = bytes[start + Math.floor(i / 2)];
  return i % 2 === 0 ? byte & 15 : byte >> 4;
}

/** Block b's zero point of column n: row n of the packed [N, ceil(kBlocks * bits / 8)] tensor. */
function zeroPointOf(q: QuantizedMatrix, n: number, b: number): number {
  const kBlocks = Math.ceil(q.K / q.blockSize);
  return codeAt(q.zeroPoints, n * Math.ceil((kBlocks * q.bits) / 8), b, q.bits);
}

/**
 * The [K, N] matrix MatMulNBits computes with, read from B, scales and zero points as the op's
 * layout describes them: written here from that description, independently of block-quant.ts.
 */
function referenceDequantize(q: QuantizedMatrix): Float32Array {
  const { K, N, bits, blockSize } = q;
  const kBlocks = Math.ceil(K / blockSize);
  const blob = (blockSize * bits) / 8;
  const w = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / blockSize);
      const c = codeAt(q.data, (n * kBlocks + b) * blob, k % blockSize, bits);
      w[k * N + n] = (c - zeroPointOf(q, n, b)) * q.scales[n * kBlocks + b];
    }
  }
  return w;
}

/** One MatMulNBits node over the quantized matrix, optionally with a bias (input 5). */
function nbitsModel(q: QuantizedMatrix, M: number, bias?: Float32Array): Uint8Array {
  return encode(
    modelOf(
      {
        name: 'nbits',
        node: [
          {
            opType: 'MatMulNBits',
            domain: 'com.microsoft',
            input: ['A', 'B', 'scales', 'zero_points', ...(bias ? ['', 'bias'] : [])],
            output: ['Y'],
            attribute: [
              { name: 'K', type: AttrType.INT, i: q.K },
              { name: 'N', type: AttrType.INT, i: q.N },
              { name: 'bits', type: AttrType.INT, i: q.bits },
              { name: 'block_size', type: AttrType.INT, i: q.blockSize },
            ],
          },
        ],
        initializer: [
          tensor('B', [q.N, q.kBlocks, q.blobSize], DType.UINT8, q.data),
          tensor('scales', [q.N, q.kBlocks], DType.FLOAT, bytesOf(q.scales)),
          tensor('zero_points', [q.N, q.zeroPointBytesPerRow], DType.UINT8, q.zeroPoints),
          ...(bias ? [tensor('bias', [q.N], DType.FLOAT, bytesOf(bias))] : []),
        ],
        input: [valueInfo('A', DType.FLOAT, [M, q.K])],
        output: [valueInfo('Y', DType.FLOAT, [M, q.N])],
      },
      true,
    ),
  );
}

describe('MatMulNBits packing', () => {
  it('packs 4-bit codes low nibble first and zero points per row, as computed by hand', () => {
    // K = 20 with blocks of 16: the second block holds 4 weights and 12 padding codes
    const K = 20;
    const w = new Float32Array(K * 2);
    const block1 = [0.5, -0.25, 1, 0];
    for (let k = 0; k < 16; k++) {
      w[k * 2] = k - 5; // [-5, 10]: scale 1, zero point 5, codes 0..15
      w[k * 2 + 1] = 5 - k; // [-10, 5]: scale 1, zero point 10, codes 15..0
    }
    block1.forEach((v, i) => {
      w[(16 + i) * 2] = v; // [-0.25, 1]: scale 1.25/15, zero point 3, codes 9, 0, 15, 3
      w[(16 + i) * 2 + 1] = -v; // [-1, 0.25]: scale 1.25/15, zero point 12, codes 6, 15, 0, 12
    });
    const q = quantizeMatrix(w, K, 2, 'KN', { bits: 4, blockSize: 16, scheme: 'asymmetric' });
    expect([q.kBlocks, q.blobSize, q.zeroPointBytesPerRow]).toEqual([2, 8, 1]);
    expect([...q.data]).toEqual([
      // column 0, block 0: (0,1) (2,3) … (14,15)
      0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
      // column 0, block 1: (9,0) (15,3), then padding codes equal to the zero point 3
      0x09, 0x3f, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
      // column 1, block 0: (15,14) … (1,0)
      0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
      // column 1, block 1: (6,15) (0,12), padding 12
      0xf6, 0xc0, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
    ]);
    expect([...q.zeroPoints]).toEqual([0x35, 0xca]);
    const s = Math.fround(1.25 / 15);
    expect([...q.scales]).toEqual([1, s, 1, s]);
  });

  it('ends a 4-bit zero-point row with an odd block count in a padding nibble of 8', () => {
    const w = Float32Array.from({ length: 16 }, (_, k) => k - 5);
    const q = quantizeMatrix(w, 16, 1, 'KN', { bits: 4, blockSize: 16, scheme: 'asymmetric' });
    expect([...q.zeroPoints]).toEqual([0x85]);
  });

  it('packs 8-bit codes one per byte, as computed by hand', () => {
    const K = 20;
    const w = new Float32Array(K);
    for (let k = 0; k < 16; k++) w[k] = k; // [0, 15]: scale 15/255, zero point 0, codes 17·k
    [-1, 2, 0, 1].forEach((v, i) => (w[16 + i] = v)); // [-1, 2]: scale 3/255, zero point 85, codes 0, 255, 85, 170
    const q = quantizeMatrix(w, K, 1, 'KN', { bits: 8, blockSize: 16, scheme: 'asymmetric' });
    expect([...q.data]).toEqual([...Array.from({ length: 16 }, (_, k) => 17 * k), 0, 255, 85, 170, ...new Array<number>(12).fill(85)]);
    expect([...q.zeroPoints]).toEqual([0, 85]);
    expect([...q.scales]).toEqual([Math.fround(15 / 255), Math.fround(3 / 255)]);
  });

  it('reads [N, K] weights (Gemm with transB) as their transpose', () => {
    const K = 40;
    const N = 3;
    const kn = randomFloats('layout', K * N);
    const nk = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) nk[n * K + k] = kn[k * N + n];
    const params = { bits: 4 as const, blockSize: 32, scheme: 'asymmetric' as const };
    expect(quantizeMatrix(nk, K, N, 'NK', params)).toEqual(quantizeMatrix(kn, K, N, 'KN', params));
  });

  it("narrows a block's range only where that lowers its squared error: below min/max over a matrix", () => {
    const K = 256;
    const N = 16;
    const w = randomFloats('search', K * N);
    const err = (q: QuantizedMatrix) => referenceDequantize(q).reduce((sum, v, i) => sum + (v - w[i]) ** 2, 0);
    for (const bits of [4, 8] as const) {
      for (const scheme of ['asymmetric', 'symmetric'] as const) {
        const searched = err(quantizeMatrix(w, K, N, 'KN', { bits, blockSize: 32, scheme }));
        const minMax = err(quantizeMatrix(w, K, N, 'KN', { bits, blockSize: 32, scheme, minMax: true }));
        // the search runs at 4 bits only (block-quant.ts says why)
        if (bits === 4) expect(searched, `${bits}-bit ${scheme}`).toBeLessThan(minMax * 0.97);
        else expect(searched, `${bits}-bit ${scheme}`).toBe(minMax);
      }
    }
  });

  const cases: { bits: QuantBits; blockSize: number; K: number }[] = [
    { bits: 4, blockSize: 32, K: 40 },
    { bits: 4, blockSize: 128, K: 200 },
    { bits: 8, blockSize: 32, K: 72 },
    { bits: 8, blockSize: 128, K: 100 },
  ];
  const N = 24;
  const M = 5;

  for (const { bits, blockSize, K } of cases) {
    for (const scheme of ['asymmetric', 'symmetric'] as const) {
      it(`${bits}-bit, blocks of ${blockSize}, K = ${K}, ${scheme}: onnxruntime's CPU kernel computes with the layout's dequantization`, async () => {
        const w = randomFloats(`w${bits}${blockSize}${scheme}`, K * N);
        const q = quantizeMatrix(w, K, N, 'KN', { bits, blockSize, scheme });
        const deq = referenceDequantize(q);
        // each weight at its nearest code: within half a step, or at the end code of a range the search narrowed
        const maxCode = (1 << bits) - 1;
        for (let k = 0; k < K; k++) {
          for (let n = 0; n < N; n++) {
            const b = n * q.kBlocks + Math.floor(k / blockSize);
            const scale = q.scales[b];
            const zero = zeroPointOf(q, n, Math.floor(k / blockSize));
            const clamped = Math.min((maxCode - zero) * scale, Math.max(-zero * scale, w[k * N + n]));
            expect(Math.abs(deq[k * N + n] - clamped)).toBeLessThanOrEqual(scale / 2 + 1e-6);
          }
        }
        const a = randomFloats(`a${bits}${blockSize}`, M * K);
        const bias = randomFloats(`bias${bits}${blockSize}`, N);
        const expected = matmul(a, deq, M, K, N);
        for (const withBias of [false, true]) {
          const session = await ort.InferenceSession.create(nbitsModel(q, M, withBias ? bias : undefined));
          const y = (await session.run({ A: new ort.Tensor('float32', a, [M, K]) })).Y.data as Float32Array;
          await session.release();
          for (let i = 0; i < y.length; i++) expect(y[i]).toBeCloseTo(expected[i] + (withBias ? bias[i % N] : 0), 3);
        }
      });
    }
  }

  it.skipIf(WEBGPU_UNAVAILABLE !== null)('runs on the WebGPU EP itself (no CPU fallback), with zero points and bias, for 4 and 8 bits and M of 1 and 5', async () => {
    for (const { bits, blockSize, K } of cases) {
      const w = randomFloats(`gpu${bits}${blockSize}`, K * N);
      const q = quantizeMatrix(w, K, N, 'KN', { bits, blockSize, scheme: 'asymmetric' });
      const deq = referenceDequantize(q);
      const bias = randomFloats('gpu-bias', N);
      for (const rows of [1, M]) {
        const a = randomFloats(`gpu-a${rows}`, rows * K);
        const expected = matmul(a, deq, rows, K, N);
        const session = await ort.InferenceSession.create(nbitsModel(q, rows, bias), {
          executionProviders: ['webgpu'],
          // session creation fails if any node would run on the CPU instead
          extra: { session: { disable_cpu_ep_fallback: '1' } },
        });
        const y = (await session.run({ A: new ort.Tensor('float32', a, [rows, K]) })).Y.data as Float32Array;
        await session.release();
        for (let i = 0; i < y.length; i++) expect(y[i]).toBeCloseTo(expected[i] + bias[i % N], 3);
      }
    }
  });
});

describe('the graph rewrite', () => {
  const M = 3;
  const K = 48;
  const N = 40;
  const f32 = (key: string, n: number) => bytesOf(randomFloats(key, n, 0.3));
  const attrF = (name: string, f: number): OnnxTypes.IAttributeProto => ({ name, type: AttrType.FLOAT, f });
  const attrI = (name: string, i: number): OnnxTypes.IAttributeProto => ({ name, type: AttrType.INT, i });

  /** Every Gemm form, a weight shared by two MatMuls, a MatMul over a 3-D input, a Conv and an activation MatMul. */
  function gemmModel(): OnnxTypes.IModelProto {
    return modelOf({
      name: 'gemms',
      node: [
        { name: 'g1', opType: 'Gemm', input: ['A', 'Wt', 'c_n'], output: ['y1'], attribute: [attrI('transB', 1), attrF('alpha', 0.5), attrF('beta', 2)] },
        { name: 'g2', opType: 'Gemm', input: ['A', 'W', 'c_1n'], output: ['y2'] },
        { name: 'g3', opType: 'Gemm', input: ['A', 'Wt', 'c_mn'], output: ['y3'], attribute: [attrI('transB', 1), attrF('beta', 0.5)] },
        { name: 'g4', opType: 'Gemm', input: ['A', 'W', 'C_in'], output: ['y4'], attribute: [attrF('beta', 3)] },
        { name: 'g5', opType: 'Gemm', input: ['A', 'W'], output: ['y5'], attribute: [attrF('alpha', 2)] },
        { name: 'm1', opType: 'MatMul', input: ['A', 'W'], output: ['y6'] },
        { name: 'm2', opType: 'MatMul', input: ['A3', 'W'], output: ['y7'] },
        { name: 'm3', opType: 'MatMul', input: ['y6', 'At'], output: ['y8'] },
        { name: 'conv', opType: 'Conv', input: ['X', 'conv_w'], output: ['y9'], attribute: [{ name: 'kernel_shape', type: AttrType.INTS, ints: [1, 1] }] },
      ],
      initializer: [
        tensor('W', [K, N], DType.FLOAT, f32('W', K * N)),
        tensor('Wt', [N, K], DType.FLOAT, f32('Wt', K * N)),
        tensor('c_n', [N], DType.FLOAT, f32('c_n', N)),
        tensor('c_1n', [1, N], DType.FLOAT, f32('c_1n', N)),
        tensor('c_mn', [M, N], DType.FLOAT, f32('c_mn', M * N)),
        tensor('conv_w', [N, K, 1, 1], DType.FLOAT, f32('conv_w', N * K)),
      ],
      input: [valueInfo('A', DType.FLOAT, [M, K]), valueInfo('A3', DType.FLOAT, [2, M, K]), valueInfo('C_in', DType.FLOAT, [M, N]), valueInfo('At', DType.FLOAT, [N, M]), valueInfo('X', DType.FLOAT, [1, K, 2, 2])],
      output: ['y1', 'y2', 'y3', 'y4', 'y5', 'y6', 'y7', 'y8', 'y9'].map((y) =>
        valueInfo(y, DType.FLOAT, y === 'y7' ? [2, M, N] : y === 'y8' ? [M, M] : y === 'y9' ? [1, N, 2, 2] : [M, N]),
      ),
    });
  }

  const feeds = () => ({
    A: new ort.Tensor('float32', randomFloats('A', M * K), [M, K]),
    A3: new ort.Tensor('float32', randomFloats('A3', 2 * M * K), [2, M, K]),
    C_in: new ort.Tensor('float32', randomFloats('C_in', M * N), [M, N]),
    At: new ort.Tensor('float32', randomFloats('At', N * M), [N, M]),
    X: new ort.Tensor('float32', randomFloats('X', K * 4), [1, K, 2, 2]),
  });

  async function outputs(model: Uint8Array): Promise<Record<string, Float32Array>> {
    const session = await ort.InferenceSession.create(model);
    const r = await session.run(feeds());
    await session.release();
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  }

  it('turns every Gemm form and every MatMul with a constant weight into MatMulNBits, keeping what each computes', async () => {
    const before = await outputs(encode(gemmModel()));
    const model = gemmModel();
    const report = await rewriteToMatMulNBits(model, new TensorSource(tmpdir()), { bits: 8, blockSize: 32, scheme: 'asymmetric' });
    const nodes = model.graph!.node!;
    expect(report.rewritten.map((r) => r.node).sort()).toEqual(['g1', 'g2', 'g3', 'g4', 'g5', 'm1', 'm2']);
    expect(report.skipped).toEqual([{ node: 'm3', op: 'MatMul', reason: 'B is not a constant initializer' }]);
    expect(nodes.filter((n) => n.opType === 'Gemm')).toEqual([]);
    expect(nodes.filter((n) => n.opType === 'Conv').map((n) => n.input)).toEqual([['X', 'conv_w']]);
    const byName = new Map(nodes.map((n) => [n.name, n]));
    // C of N elements rides in the bias input; other C shapes and run-time C get an Add
    expect(byName.get('g1')!.input).toHaveLength(6);
    expect(byName.get('g2')!.input).toHaveLength(6);
    expect(byName.get('g3')!.input).toHaveLength(4);
    expect(nodes.filter((n) => n.opType === 'Add')).toHaveLength(2);
    expect(nodes.filter((n) => n.opType === 'Mul')).toHaveLength(1);
    // W is quantized once for its four KN uses (g2, g4, m1, m2; g5 folds alpha 2 into its own copy), Wt once per alpha
    const quantizedB = new Set(nodes.filter((n) => n.opType === 'MatMulNBits').map((n) => n.input![1]));
    expect(quantizedB.size).toBe(4);
    // the float weights and the C constants that were copied (beta folded in, or [1, N] made [N]) are gone
    const left = model.graph!.initializer!.map((t) => t.name);
    for (const gone of ['W', 'Wt', 'c_n', 'c_1n', 'c_mn']) expect(left).not.toContain(gone);
    expect(left).toContain('conv_w');
    expect(model.opsetImport).toContainEqual({ domain: 'com.microsoft', version: 1 });
    for (const n of nodes.filter((x) => x.opType === 'MatMulNBits')) {
      expect(n.domain).toBe('com.microsoft');
      expect(n.attribute!.map((a) => a.name)).toEqual(['K', 'N', 'bits', 'block_size']);
    }

    const after = await outputs(encode(model));
    for (const [name, ref] of Object.entries(before)) {
      expect(after[name].length).toBe(ref.length);
      expect(cosineSimilarity(after[name], ref), name).toBeGreaterThan(0.9999);
    }
    expect(after.y9).toEqual(before.y9);
  });

  it('quantizes float16 weights with float16 scales', async () => {
    const half = (values: Float32Array) => bytesOf(Uint16Array.from(values, toHalfBits));
    const wValues = randomFloats('W16', K * N, 0.3);
    const build = () =>
      modelOf({
        name: 'fp16',
        node: [
          { name: 'mm', opType: 'MatMul', input: ['A', 'W'], output: ['y'] },
          { name: 'gemm', opType: 'Gemm', input: ['A', 'Wt', 'c'], output: ['z'], attribute: [attrI('transB', 1)] },
        ],
        initializer: [
          tensor('W', [K, N], DType.FLOAT16, half(wValues)),
          tensor('Wt', [N, K], DType.FLOAT16, half(randomFloats('Wt16', K * N, 0.3))),
          tensor('c', [N], DType.FLOAT16, half(randomFloats('c16', N))),
        ],
        input: [valueInfo('A', DType.FLOAT16, [M, K])],
        output: [valueInfo('y', DType.FLOAT16, [M, N]), valueInfo('z', DType.FLOAT16, [M, N])],
      });
    const a = Uint16Array.from(randomFloats('A16', M * K), toHalfBits);
    const run = async (m: OnnxTypes.IModelProto) => {
      const session = await ort.InferenceSession.create(encode(m));
      const r = await session.run({ A: new ort.Tensor('float16', a, [M, K]) });
      await session.release();
      return { y: Array.from(r.y.data as Uint16Array, fromHalfBits), z: Array.from(r.z.data as Uint16Array, fromHalfBits) };
    };
    const before = await run(build());
    const model = build();
    await rewriteToMatMulNBits(model, new TensorSource(tmpdir()), { bits: 8, blockSize: 32, scheme: 'asymmetric' });
    const scales = model.graph!.initializer!.filter((t) => t.name!.endsWith('_scales'));
    expect(scales.map((t) => t.dataType)).toEqual([DType.FLOAT16, DType.FLOAT16]);
    const after = await run(model);
    expect(cosineSimilarity(after.y, before.y)).toBeGreaterThan(0.999);
    expect(cosineSimilarity(after.z, before.z)).toBeGreaterThan(0.999);
  });
});

/** The rewritable MatMul / Gemm nodes of a graph and the [K, N] of their weights, read from the original. */
function constantWeightNodes(graph: OnnxTypes.IGraphProto): { op: string; K: number; N: number }[] {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name, t]));
  const out: { op: string; K: number; N: number }[] = [];
  for (const n of graph.node ?? []) {
    const w = inits.get(n.input?.[1]);
    if ((n.opType !== 'MatMul' && n.opType !== 'Gemm') || !w || w.dims?.length !== 2) continue;
    const [d0, d1] = w.dims.map(Number);
    const transB = n.attribute?.find((a) => a.name === 'transB')?.i;
    out.push(Number(transB ?? 0) ? { op: n.opType, K: d1, N: d0 } : { op: n.opType, K: d0, N: d1 });
  }
  return out;
}

function fileSize(dir: string, rel: string): number {
  return readFileSync(path.join(dir, rel)).byteLength;
}

function unetBytes(dir: string): number {
  return readdirSync(path.join(dir, 'unet'))
    .filter((f) => f.startsWith('model.onnx'))
    .reduce((sum, f) => sum + fileSize(dir, `unet/${f}`), 0);
}

async function unetOutput(dir: string, size = 16, externalData?: { path: string; data: Uint8Array }[]): Promise<Float32Array> {
  const graphPath = path.join(dir, UNET_GRAPH);
  const p = probeInputs(readFileSync(graphPath), { batch: 2, height: size, width: size });
  const session = externalData
    ? await ort.InferenceSession.create(readFileSync(graphPath), { externalData })
    : await ort.InferenceSession.create(graphPath);
  const feeds = Object.fromEntries(Object.entries(probeTensors(p)).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  const out = (await session.run(feeds)).out_sample.data as Float32Array;
  await session.release();
  return out;
}

describe('quantizing tiny-sd', () => {
  let root = '';
  let src = '';
  let reference: Float32Array;
  let original: OnnxTypes.IModelProto;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'quantize-test-'));
    src = path.join(root, 'tiny-sd');
    for (const f of new TinyModelFactory().setFiles('tiny-sd')) {
      mkdirSync(path.dirname(path.join(src, f.path)), { recursive: true });
      writeFileSync(path.join(src, f.path), f.bytes);
    }
    reference = await unetOutput(src);
    original = onnx.ModelProto.decode(readFileSync(path.join(src, UNET_GRAPH)));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const settings = [
    { bits: 8, blockSize: 32 },
    { bits: 8, blockSize: 128 },
    { bits: 4, blockSize: 32 },
    { bits: 4, blockSize: 128 },
  ] as const;

  for (const { bits, blockSize } of settings) {
    it(`${bits}-bit, blocks of ${blockSize}: MatMulNBits for every constant-weight MatMul/Gemm, Convs untouched, the expected size, cosine >= ${cosineTarget(bits)}`, async () => {
      const out = path.join(root, `q${bits}-${blockSize}`);
      const result = await quantizeModelDir(src, out, { bits, blockSize, scheme: DEFAULT_SCHEME });

      const q = onnx.ModelProto.decode(readFileSync(path.join(out, UNET_GRAPH)));
      const before = constantWeightNodes(original.graph!);
      const ops = (m: OnnxTypes.IModelProto, op: string) => m.graph!.node!.filter((n) => n.opType === op);
      expect(before.length).toBeGreaterThan(10);
      expect(ops(q, 'MatMulNBits')).toHaveLength(before.length);
      expect(constantWeightNodes(q.graph!)).toEqual([]);
      expect(ops(q, 'Gemm')).toEqual([]);
      // activation × activation MatMuls (attention scores and values) stay
      expect(ops(q, 'MatMul')).toHaveLength(ops(original, 'MatMul').length - before.filter((n) => n.op === 'MatMul').length);
      expect(ops(q, 'Conv').map((n) => n.input)).toEqual(ops(original, 'Conv').map((n) => n.input));
      for (const n of ops(q, 'MatMulNBits')) {
        const attrs = Object.fromEntries(n.attribute!.map((a) => [a.name, Number(a.i)]));
        expect([attrs.bits, attrs.block_size]).toEqual([bits, blockSize]);
      }

      // size: the float weights out, B + float32 scales + zero points in (plus graph bookkeeping and alignment)
      const removed = before.reduce((s, n) => s + n.K * n.N * 4, 0);
      const added = before.reduce((s, { K, N }) => {
        const kb = Math.ceil(K / blockSize);
        return s + N * kb * ((blockSize * bits) / 8) + N * kb * 4 + N * Math.ceil((kb * bits) / 8);
      }, 0);
      const sizeBefore = unetBytes(src);
      const sizeAfter = unetBytes(out);
      expect([result.report.weightBytesBefore, result.report.weightBytesAfter]).toEqual([removed, added]);
      expect(result.unetBytesBefore).toBe(sizeBefore);
      expect(result.unetBytesAfter).toBe(sizeAfter);
      const expectedRatio = (sizeBefore - removed + added) / sizeBefore;
      expect(sizeAfter / sizeBefore).toBeLessThan(1);
      expect(Math.abs(sizeAfter / sizeBefore - expectedRatio)).toBeLessThan(0.02);

      // the other files, unchanged
      for (const f of new TinyModelFactory().setFiles('tiny-sd')) {
        if (f.path !== UNET_GRAPH) expect(readFileSync(path.join(out, f.path)).equals(readFileSync(path.join(src, f.path))), f.path).toBe(true);
      }

      const cos = cosineSimilarity(await unetOutput(out), reference);
      console.info(`tiny-sd ${bits}-bit blocks of ${blockSize}: size ${(sizeAfter / sizeBefore).toFixed(3)}x (expected ${expectedRatio.toFixed(3)}x), cosine ${cos.toFixed(5)}`);
      expect(cos).toBeGreaterThanOrEqual(cosineTarget(bits));
    });
  }

  it('writes weights over the shard limit as several shards that load in onnxruntime-node through externalData', async () => {
    const limit = 100_000;
    const single = path.join(root, 'single');
    const sharded = path.join(root, 'sharded');
    await quantizeModelDir(src, single, { bits: 4, blockSize: 32, scheme: DEFAULT_SCHEME });
    const result = await quantizeModelDir(src, sharded, { bits: 4, blockSize: 32, scheme: DEFAULT_SCHEME, maxShardBytes: limit });
    expect(result.shards.length).toBeGreaterThanOrEqual(3);
    expect(result.shards.map((s) => s.file)).toEqual(result.shards.map((_, i) => (i === 0 ? 'model.onnx_data' : `model.onnx_data_${i}`)));
    const files = readdirSync(path.join(sharded, 'unet')).filter((f) => f.startsWith('model.onnx_data')).sort();
    expect(files).toEqual(result.shards.map((s) => s.file).sort());
    for (const f of files) expect(fileSize(sharded, `unet/${f}`)).toBeLessThanOrEqual(limit);

    const graph = onnx.ModelProto.decode(readFileSync(path.join(sharded, UNET_GRAPH))).graph!;
    const external = graph.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(external.length).toBeGreaterThan(0);
    for (const t of graph.initializer!) {
      if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) {
        // small tensors stay inline, as onnx's writer keeps them: shape inference reads them at load
        expect(t.rawData!.byteLength).toBeLessThan(INLINE_BELOW_BYTES);
        continue;
      }
      const e = Object.fromEntries(t.externalData!.map((x) => [x.key, x.value]));
      expect(Object.keys(e).sort()).toEqual(['length', 'location', 'offset']);
      expect(Number(e.offset) % SHARD_ALIGNMENT).toBe(0);
      expect(Number(e.offset) + Number(e.length)).toBeLessThanOrEqual(fileSize(sharded, `unet/${e.location}`));
    }

    const externalData = files.map((f) => ({ path: f, data: new Uint8Array(readFileSync(path.join(sharded, 'unet', f))) }));
    expect(await unetOutput(sharded, 16, externalData)).toEqual(await unetOutput(single));
  });

  it('reads a UNet whose float weights are in several external-data shards as it reads an inline one', async () => {
    // tiny-sd with its fp32 weights moved into four-or-more shards, then quantized
    const shardedSrc = path.join(root, 'src-sharded');
    mkdirSync(path.join(shardedSrc, 'unet'), { recursive: true });
    for (const f of new TinyModelFactory().setFiles('tiny-sd')) {
      if (f.path === UNET_GRAPH) continue;
      mkdirSync(path.dirname(path.join(shardedSrc, f.path)), { recursive: true });
      writeFileSync(path.join(shardedSrc, f.path), f.bytes);
    }
    const model = onnx.ModelProto.decode(readFileSync(path.join(src, UNET_GRAPH)));
    const shards = await writeShards(model.graph!, new TensorSource(path.join(src, 'unet')), path.join(shardedSrc, 'unet'), { maxShardBytes: 150_000 });
    expect(shards.length).toBeGreaterThanOrEqual(4);
    writeFileSync(path.join(shardedSrc, UNET_GRAPH), onnx.ModelProto.encode(model).finish());
    expect(await unetOutput(shardedSrc)).toEqual(reference);

    const fromInline = path.join(root, 'from-inline');
    const fromSharded = path.join(root, 'from-sharded');
    await quantizeModelDir(src, fromInline, { bits: 8, blockSize: 32, scheme: DEFAULT_SCHEME });
    const r = await quantizeModelDir(shardedSrc, fromSharded, { bits: 8, blockSize: 32, scheme: DEFAULT_SCHEME });
    // the source shards are not copied: the quantized graph has its own
    expect(r.copied.filter((f) => f.startsWith('unet/model.onnx'))).toEqual([]);
    expect(readFileSync(path.join(fromSharded, 'unet/model.onnx_data')).equals(readFileSync(path.join(fromInline, 'unet/model.onnx_data')))).toBe(true);
    expect(await unetOutput(fromSharded)).toEqual(await unetOutput(fromInline));
  });

  it('refuses an output folder inside the model folder', async () => {
    await expect(quantizeModelDir(src, path.join(src, 'q'), { bits: 4, blockSize: 32, scheme: DEFAULT_SCHEME })).rejects.toThrow(/outside the model folder/);
  });
});

describe('npm run quantize arguments', () => {
  it('takes the model dir, bits, block and an optional output folder', () => {
    const a = parseArgs(['models/x', '--bits', '4', '--block=128']);
    expect(a.options).toMatchObject({ bits: 4, blockSize: 128, scheme: DEFAULT_SCHEME, minMax: false });
    expect(parseArgs(['m', '--bits=8', '--block=32', '--min-max', '--scheme', 'symmetric']).options).toMatchObject({ minMax: true, scheme: 'symmetric' });
    expect(a.outDir).toBe(path.resolve('models/x-int4-b128'));
    expect(parseArgs(['m', '--bits', '8', '--block', '32', '--out', 'o']).outDir).toBe(path.resolve('o'));
    expect(() => parseArgs(['m', '--bits', '3', '--block', '32'])).toThrow(/--bits takes 4 or 8/);
    expect(() => parseArgs(['m', '--bits', '4', '--block', '64'])).toThrow(/--block takes 32 or 128/);
    expect(() => parseArgs(['--bits', '4', '--block', '32'])).toThrow(/usage/);
  });
});
