/**
 * Block-wise quantization of a [K, N] weight matrix into the layout of onnxruntime's
 * com.microsoft MatMulNBits: per output column n and block of `blockSize` rows along K, one scale
 * and one zero point; codes along K packed low bits first (4 bits: element 2i in the low nibble,
 * 2i+1 in the high one).
 *
 * B:           uint8 [N, kBlocks, blockSize * bits / 8]
 * scales:      [N, kBlocks] (A's element type: the caller stores them as float32 or float16)
 * zero points: uint8 [N, ceil(kBlocks * bits / 8)], packed as the codes; a 4-bit row with an odd
 *              number of blocks ends in a padding nibble of 8 (the op's default zero point)
 *
 * W[k, n] = (code - zeroPoint) * scale. Rows past K in the last block (K not a multiple of the
 * block) hold the block's zero point, so they dequantize to exactly 0 whatever A's padding is.
 *
 * Each block's range starts from its min/max and, at 4 bits unless `minMax` is set, shrinks to the
 * step with the least squared error over the block (STEP_SEARCH): min/max spends a whole code on
 * the extremes, and a slightly smaller step rounds the bulk of the weights more finely. On bench-sd
 * this lifts the worst 4-bit UNet output cosine over four probe inputs from 0.979 to 0.986
 * (tools/quantize/scheme.ts).
 */

export type QuantBits = 4 | 8;

/**
 * asymmetric: each block's [min, max] (widened to hold 0, so that zero weights and the padding stay
 * exact) mapped onto all 2^bits codes, zero point where 0 lands.
 * symmetric: [-absmax, absmax] onto codes 1 .. 2^bits - 1, zero point 2^(bits-1) for every block.
 */
export type QuantScheme = 'asymmetric' | 'symmetric';

export interface QuantParams {
  bits: QuantBits;
  blockSize: number;
  scheme: QuantScheme;
  /**
   * Rounds a scale to the precision it is stored in (float16 scales for float16 models), so that the
   * codes are chosen against the scale the kernel will multiply by.
   */
  roundScale?: (scale: number) => number;
  /** Plain min/max ranges, without the 4-bit step search (for comparison). */
  minMax?: boolean;
}

/** Candidate ranges: the min/max one times 1 - i·STEP_SEARCH.stride for i = 1 … STEP_SEARCH.count. */
export const STEP_SEARCH = { count: 20, stride: 0.015 } as const;

export interface QuantizedMatrix {
  K: number;
  N: number;
  bits: QuantBits;
  blockSize: number;
  kBlocks: number;
  /** Bytes per block of codes: blockSize * bits / 8. */
  blobSize: number;
  /** [N, kBlocks, blobSize] */
  data: Uint8Array;
  /** [N, kBlocks], already rounded by roundScale. */
  scales: Float32Array;
  /** [N, zeroPointBytesPerRow] */
  zeroPoints: Uint8Array;
  zeroPointBytesPerRow: number;
}

/** How the weights lie in memory: [K, N] (MatMul's B, Gemm's B) or [N, K] (Gemm's B with transB). */
export type WeightLayout = 'KN' | 'NK';

export function checkParams(p: QuantParams): void {
  if (p.bits !== 4 && p.bits !== 8) throw new Error(`bits must be 4 or 8, not ${String(p.bits)}`);
  // MatMulNBits requires a power of two of at least 16
  if (!Number.isInteger(p.blockSize) || p.blockSize < 16 || (p.blockSize & (p.blockSize - 1)) !== 0) {
    throw new Error(`block size must be a power of two >= 16, not ${p.blockSize}`);
  }
}

/** Writes `code` (bits wide) as element `index` of a low-bits-first packed stream starting at `offset`. */
function packCode(out: Uint8Array, offset: number, index: number, bits: QuantBits, code: number): void {
  if (bits === 8) {
    out[offset + index] = code;
    return;
  }
  const byte = offset + (index >> 1);
  out[byte] = index & 1 ? (out[byte] & 0x0f) | (code << 4) : (out[byte] & 0xf0) | code;
}

/** Reads element `index` of a low-bits-first packed stream starting at `offset`. */
export function unpackCode(data: Uint8Array, offset: number, index: number, bits: QuantBits): number {
  if (bits === 8) return data[offset + index];
  const byte = data[offset + (index >> 1)];
  return index & 1 ? byte >> 4 : byte & 0x0f;
}

/**
 * Round half up, as Math.round, but as floor(x + 0.5): V8 compiles Math.round with a data-dependent
 * branch that mispredicts on half the weights, which made the step search 2.5x slower.
 */
function codeOf(w: number, scale: number, zp: number, maxCode: number): number {
  const c = Math.floor(w / scale + 0.5) + zp;
  return c < 0 ? 0 : c > maxCode ? maxCode : c;
}

function squaredError(block: Float32Array, count: number, scale: number, zp: number, maxCode: number): number {
  let e = 0;
  for (let i = 0; i < count; i++) {
    const w = block[i];
    let c = Math.floor(w / scale + 0.5) + zp;
    c = c < 0 ? 0 : c > maxCode ? maxCode : c;
    const d = w - (c - zp) * scale;
    e += d * d;
  }
  return e;
}

/**
 * Writes [scale, zero point] for a block's [lo, hi] range scaled by `shrink` into `out` (reused: this
 * runs ~20 times per block): asymmetric ranges keep their middle (at shrink 1, lo lands on code 0),
 * symmetric ones their zero.
 */
function candidate(out: Float64Array, p: QuantParams, roundScale: (s: number) => number, lo: number, hi: number, shrink: number): void {
  const maxCode = (1 << p.bits) - 1;
  if (p.scheme === 'symmetric') {
    const half = 1 << (p.bits - 1);
    out[0] = roundScale((Math.max(hi, -lo) * shrink) / (half - 1));
    out[1] = half;
    return;
  }
  const s = roundScale(((hi - lo) * shrink) / maxCode);
  const z = s === 0 ? 0 : shrink === 1 ? Math.round(-lo / s) : Math.round(maxCode / 2 - (lo + hi) / 2 / s);
  out[0] = s;
  out[1] = Math.min(maxCode, Math.max(0, z));
}

/**
 * Writes the block's [scale, zero point] into `out`: the min/max one, or with `search` the candidate
 * of least squared error. A function of its own so that V8 optimizes it as a hot call rather than
 * leaving the one long loop of quantizeMatrix to on-stack replacement (about 4x slower here).
 */
function chooseStep(
  out: Float64Array,
  block: Float32Array,
  count: number,
  lo: number,
  hi: number,
  p: QuantParams,
  roundScale: (s: number) => number,
  search: boolean,
): void {
  const maxCode = (1 << p.bits) - 1;
  candidate(out, p, roundScale, lo, hi, 1);
  if (!search || out[0] === 0) return;
  let scale = out[0];
  let zp = out[1];
  let best = squaredError(block, count, scale, zp, maxCode);
  for (let i = 1; i <= STEP_SEARCH.count; i++) {
    candidate(out, p, roundScale, lo, hi, 1 - i * STEP_SEARCH.stride);
    const e = squaredError(block, count, out[0], out[1], maxCode);
    if (e < best) {
      best = e;
      scale = out[0];
      zp = out[1];
    }
  }
  out[0] = scale;
  out[1] = zp;
}

export function quantizeMatrix(weights: Float32Array, K: number, N: number, layout: WeightLayout, params: QuantParams): QuantizedMatrix {
  checkParams(params);
  if (weights.length !== K * N) throw new Error(`${weights.length} weights for K=${K}, N=${N}`);
  const { bits, blockSize, scheme } = params;
  const roundScale = params.roundScale ?? ((s: number) => Math.fround(s));
  const maxCode = (1 << bits) - 1;
  const kBlocks = Math.ceil(K / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const data = new Uint8Array(N * kBlocks * blobSize);
  const scales = new Float32Array(N * kBlocks);
  const zeroPoints = new Uint8Array(N * zpRow);
  // 4-bit rows with an odd block count end in a padding nibble: 8, the op's default zero point
  if (bits === 4 && kBlocks % 2 === 1) for (let n = 0; n < N; n++) zeroPoints[n * zpRow + zpRow - 1] = 0x80;
  const at = layout === 'KN' ? (k: number, n: number) => weights[k * N + n] : (k: number, n: number) => weights[n * K + k];

  const block = new Float32Array(blockSize);
  const pair = new Float64Array(2);
  // at 8 bits (255 steps) min/max rounds finely enough already: on bench-sd the search moved no output
  // cosine in the fifth decimal and made quantizing 10x slower
  const search = !params.minMax && bits === 4;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize;
      const count = Math.min(K, k0 + blockSize) - k0;
      let lo = 0;
      let hi = 0;
      for (let i = 0; i < count; i++) {
        const w = at(k0 + i, n);
        block[i] = w;
        if (w < lo) lo = w;
        if (w > hi) hi = w;
      }
      chooseStep(pair, block, count, lo, hi, params, roundScale, search);
      const scale = pair[0];
      const zp = pair[1];
      const blob = (n * kBlocks + b) * blobSize;
      for (let i = 0; i < blockSize; i++) packCode(data, blob, i, bits, i < count && scale > 0 ? codeOf(block[i], scale, zp, maxCode) : zp);
      scales[n * kBlocks + b] = scale;
      packCode(zeroPoints, n * zpRow, b, bits, zp);
    }
  }
  return { K, N, bits, blockSize, kBlocks, blobSize, data, scales, zeroPoints, zeroPointBytesPerRow: zpRow };
}

/** The [K, N] float32 matrix the kernel computes with: for tests and error measurement. */
export function dequantizeMatrix(q: QuantizedMatrix): Float32Array {
  const out = new Float32Array(q.K * q.N);
  for (let n = 0; n < q.N; n++) {
    for (let b = 0; b < q.kBlocks; b++) {
      const scale = q.scales[n * q.kBlocks + b];
      const zp = unpackCode(q.zeroPoints, n * q.zeroPointBytesPerRow, b, q.bits);
      const blob = (n * q.kBlocks + b) * q.blobSize;
      for (let i = 0; i < q.blockSize; i++) {
        const k = b * q.blockSize + i;
        if (k >= q.K) break;
        out[k * q.N + n] = (unpackCode(q.data, blob, i, q.bits) - zp) * scale;
      }
    }
  }
  return out;
}

/** Bytes of B, scales and zero points for a [K, N] matrix, with scales of `scaleBytes` each. */
export function quantizedBytes(K: number, N: number, bits: QuantBits, blockSize: number, scaleBytes: number): number {
  const kBlocks = Math.ceil(K / blockSize);
  return N * kBlocks * ((blockSize * bits) / 8) + N * kBlocks * scaleBytes + N * Math.ceil((kBlocks * bits) / 8);
}
