/**
 * Layers written the way torch.onnx exports the diffusers / transformers modules of Stable
 * Diffusion (GroupNorm as Reshape → InstanceNormalization → Reshape → Mul → Add, SiLU as
 * Sigmoid · x, exact GELU through Erf, Linear as Gemm on 2-D and MatMul + Add on 3-D), with
 * seeded random weights. Each function takes and returns value names of a GraphBuilder.
 */
import type { GraphBuilder } from './graph.ts';
import { randomArray } from './rng.ts';

/** Random weight of the given dims, keyed by the builder's current scope + name. */
export function weight(b: GraphBuilder, name: string, dims: number[], std: number, mean = 0): string {
  const count = dims.reduce((x, y) => x * y, 1);
  return b.tensor(name, dims, randomArray(b.seed, b.path(name), count, std, mean));
}

export function filled(b: GraphBuilder, name: string, dims: number[], value: number): string {
  const count = dims.reduce((x, y) => x * y, 1);
  return b.tensor(name, dims, new Float32Array(count).fill(value));
}

export interface ConvOptions {
  kernel?: number;
  stride?: number;
  /** [top, left, bottom, right]; defaults to "same" padding for odd kernels. */
  pads?: number[];
  /** Multiplies the default 1/sqrt(fan_in) weight scale. */
  gain?: number;
  biasStd?: number;
}

export function conv(b: GraphBuilder, name: string, x: string, inCh: number, outCh: number, opts: ConvOptions = {}): string {
  const k = opts.kernel ?? 3;
  const stride = opts.stride ?? 1;
  const p = (k - 1) / 2;
  const pads = opts.pads ?? [p, p, p, p];
  return b.scope(name, () => {
    const w = weight(b, 'weight', [outCh, inCh, k, k], (opts.gain ?? 1) / Math.sqrt(inCh * k * k));
    const bias = weight(b, 'bias', [outCh], opts.biasStd ?? 0.02);
    return b.op('Conv', [x, w, bias], { kernel_shape: [k, k], strides: [stride, stride], pads, dilations: [1, 1], group: 1 });
  });
}

/** torch.nn.GroupNorm as torch.onnx exports it. */
export function groupNorm(b: GraphBuilder, name: string, x: string, channels: number, groups: number, eps = 1e-5): string {
  return b.scope(name, () => {
    const grouped = b.op('Reshape', [x, b.int64([0, groups, -1])]);
    const normed = b.op('InstanceNormalization', [grouped, filled(b, 'in_scale', [groups], 1), filled(b, 'in_bias', [groups], 0)], {
      epsilon: { float: eps },
    });
    const back = b.op('Reshape', [normed, b.op('Shape', [x])]);
    const gamma = weight(b, 'weight', [channels, 1, 1], 0.1, 1);
    const beta = weight(b, 'bias', [channels, 1, 1], 0.1);
    return b.op('Add', [b.op('Mul', [back, gamma]), beta]);
  });
}

export function silu(b: GraphBuilder, x: string): string {
  return b.op('Mul', [x, b.op('Sigmoid', [x])]);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), as torch exports nn.GELU(). */
export function gelu(b: GraphBuilder, x: string): string {
  const erf = b.op('Erf', [b.op('Div', [x, b.scalar(Math.SQRT2)])]);
  return b.op('Mul', [b.op('Mul', [x, b.op('Add', [erf, b.scalar(1)])]), b.scalar(0.5)]);
}

/** nn.Linear on a 2-D input: Gemm with the torch [out, in] weight layout. */
export function linear2d(b: GraphBuilder, name: string, x: string, inF: number, outF: number, gain = 1): string {
  return b.scope(name, () => {
    const w = weight(b, 'weight', [outF, inF], gain / Math.sqrt(inF));
    const bias = weight(b, 'bias', [outF], 0.02);
    return b.op('Gemm', [x, w, bias], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
  });
}

/** nn.Linear on a 3-D input: MatMul with the transposed weight, then Add of the bias. */
export function linear3d(b: GraphBuilder, name: string, x: string, inF: number, outF: number, opts: { bias?: boolean; gain?: number } = {}): string {
  return b.scope(name, () => {
    const w = weight(b, 'weight', [inF, outF], (opts.gain ?? 1) / Math.sqrt(inF));
    const y = b.op('MatMul', [x, w]);
    return opts.bias === false ? y : b.op('Add', [y, weight(b, 'bias', [outF], 0.02)]);
  });
}

export function layerNorm(b: GraphBuilder, name: string, x: string, features: number, eps = 1e-5): string {
  return b.scope(name, () =>
    b.op('LayerNormalization', [x, weight(b, 'weight', [features], 0.1, 1), weight(b, 'bias', [features], 0.1)], {
      axis: -1,
      epsilon: { float: eps },
    }),
  );
}

export interface AttentionOptions {
  heads: number;
  /** Channels of the query stream (also the output's). */
  dim: number;
  /** Channels of the key/value stream: differs from dim for cross-attention. */
  kvDim: number;
  qkvBias: boolean;
  /** Added to the [.., N, M] scores before the softmax (e.g. a causal mask). */
  scoreBias?: string;
  /** Gain of the output projection. */
  outGain?: number;
}

/** Multi-head scaled dot-product attention, [B, N, dim] × [B, M, kvDim] → [B, N, dim]. */
export function attention(b: GraphBuilder, name: string, xq: string, xkv: string, opts: AttentionOptions): string {
  const { heads, dim, kvDim } = opts;
  const headDim = dim / heads;
  return b.scope(name, () => {
    const q = linear3d(b, 'to_q', xq, dim, dim, { bias: opts.qkvBias });
    const k = linear3d(b, 'to_k', xkv, kvDim, dim, { bias: opts.qkvBias });
    const v = linear3d(b, 'to_v', xkv, kvDim, dim, { bias: opts.qkvBias });
    const splitHeads = b.int64([0, 0, heads, headDim]);
    const qh = b.op('Transpose', [b.op('Reshape', [q, splitHeads])], { perm: [0, 2, 1, 3] });
    const kt = b.op('Transpose', [b.op('Reshape', [k, splitHeads])], { perm: [0, 2, 3, 1] });
    const vh = b.op('Transpose', [b.op('Reshape', [v, splitHeads])], { perm: [0, 2, 1, 3] });
    let scores = b.op('Mul', [b.op('MatMul', [qh, kt]), b.scalar(1 / Math.sqrt(headDim))]);
    if (opts.scoreBias) scores = b.op('Add', [scores, opts.scoreBias]);
    const probs = b.op('Softmax', [scores], { axis: -1 });
    const ctx = b.op('Transpose', [b.op('MatMul', [probs, vh])], { perm: [0, 2, 1, 3] });
    const merged = b.op('Reshape', [ctx, b.int64([0, 0, dim])]);
    return linear3d(b, 'to_out', merged, dim, dim, { gain: opts.outGain ?? 1 });
  });
}

/** Shape(x)[start:end] as an int64 vector. */
export function shapeSlice(b: GraphBuilder, x: string, start: number, end: number): string {
  return b.op('Slice', [b.op('Shape', [x]), b.int64([start]), b.int64([end]), b.int64([0])]);
}

/**
 * Nearest-neighbour upsampling of x to the spatial size of `like`, as torch exports
 * F.interpolate(x, size=like.shape[-2:]) (asymmetric, floor). Reading the size from the skip
 * tensor makes odd latent sizes work where a fixed ×2 would be off by one.
 */
export function resizeNearestLike(b: GraphBuilder, x: string, like: string): string {
  const sizes = b.op('Concat', [shapeSlice(b, x, 0, 2), shapeSlice(b, like, 2, 4)], { axis: 0 });
  return b.op('Resize', [x, '', '', sizes], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}

/** Nearest-neighbour upsampling by an integer factor (F.interpolate(scale_factor=f)). */
export function resizeNearestScale(b: GraphBuilder, x: string, factor: number): string {
  const scales = b.tensor('scales', [4], Float32Array.of(1, 1, factor, factor));
  return b.op('Resize', [x, '', scales], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}
