// tools/quantize: the MatMulNBits packing against hand-computed bytes and against onnxruntime's own
// kernels (CPU, and the WebGPU EP where onnxruntime-node has an adapter).
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { nodeWebgpuUnavailableReason } from '../../tools/node-webgpu.ts';
import { onnx, type OnnxTypes } from '../../tools/onnx/proto.ts';
import { Rng } from '../../tools/onnx/rng.ts';
import { quantizeMatrix, type QuantBits, type QuantizedMatrix } from '../../tools/quantize/block-quant.ts';

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

/**
 * The [K, N] matrix MatMulNBits computes with, read from B, scales and zero points as the op's
 * layout describes them: written here from that description, independently of block-quant.ts.
 */
function referenceDequantize(q: QuantizedMatrix): Float32Array {
  const { K, N, bits, blockSize } = q;
  const kBlocks = Math.ceil(K / blockSize);
  const blob = (blockSize * bits) / 8;
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const code = (bytes: Uint8Array, start: number, i: number) => {
    if (bits === 8) return bytes[start + i];
    const byte = bytes[start + Math.floor(i / 2)];
    return i % 2 === 0 ? byte & 15 : byte >> 4;
  };
  const w = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / blockSize);
      const c = code(q.data, (n * kBlocks + b) * blob, k % blockSize);
      w[k * N + n] = (c - code(q.zeroPoints, n * zpRow, b)) * q.scales[n * kBlocks + b];
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
        // each weight within half a step of its code's value
        for (let k = 0; k < K; k++) {
          for (let n = 0; n < N; n++) {
            const scale = q.scales[n * q.kBlocks + Math.floor(k / blockSize)];
            expect(Math.abs(deq[k * N + n] - w[k * N + n])).toBeLessThanOrEqual(scale / 2 + 1e-6);
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
