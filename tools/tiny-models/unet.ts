/**
 * UNet2DConditionModel graphs with the operator kinds of SD's: conv_in, sinusoidal timestep
 * embedding → Linear → SiLU → Linear, resnet blocks (GroupNorm, SiLU, 3×3 conv, time projection),
 * stride-2 downsamples, transformer blocks (self- and cross-attention, GEGLU feed-forward), nearest
 * upsampling to the skip's size, skip concats, conv_out. Weights are seeded; gains are chosen so that
 * out_sample has a standard deviation near 1.
 *
 * Two layouts share the blocks and the size spec:
 * - 'tiny' (the tiny sets): one resnet, two downsamples in a row, one transformer at 1/4 of the
 *   latent size, one skip, no mid block. Its bytes are fixed by the tests; it is not SD's layout,
 *   so it cannot be reached by shrinking the 'sd' one.
 * - 'sd' (the bench set): SD 1.5's layout, any number of levels, layers_per_block resnets down and
 *   layers_per_block + 1 up, a mid block, a skip for every down-path output.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import { attention, conv, gelu, groupNorm, layerNorm, linear2d, linear3d, resizeNearestLike, silu } from '../onnx/layers.ts';
import { DType } from '../onnx/proto.ts';
import {
  floatInput,
  floatOutput,
  GROUPS,
  LATENT_CHANNELS,
  SAMPLE_SIZE,
  SEED,
  TEXT_HIDDEN,
  UNET_CHANNELS,
  UNET_HEADS,
  UNET_TIME_DIM,
  type FloatIO,
} from './common.ts';

export interface UNetSize {
  layout: 'tiny' | 'sd';
  /** Channels per level, as diffusers' block_out_channels; the time projection has blockOutChannels[0] features. */
  blockOutChannels: readonly number[];
  /** Resnets per down block (up blocks have one more), as diffusers' layers_per_block. */
  layersPerBlock: number;
  /** Per level: CrossAttn{Down,Up}Block2D (true) or {Down,Up}Block2D (false). */
  crossAttention: readonly boolean[];
  /** Attention heads (diffusers' attention_head_dim, which SD 1.5's config uses as the head count). */
  heads: number;
  /** Features of encoder_hidden_states: the text encoder's hidden size. */
  crossAttentionDim: number;
  timeEmbedDim: number;
  groups: number;
  /** Gain of conv_out: sets the spread of out_sample. */
  outGain: number;
}

/** The tiny sets' UNet: today's constants. */
export const TINY_UNET_SIZE: UNetSize = {
  layout: 'tiny',
  blockOutChannels: [UNET_CHANNELS, UNET_CHANNELS],
  layersPerBlock: 1,
  crossAttention: [false, true],
  heads: UNET_HEADS,
  crossAttentionDim: TEXT_HIDDEN,
  timeEmbedDim: UNET_TIME_DIM,
  groups: GROUPS,
  outGain: 1.6,
};

export interface UNetSpec {
  /** 4, or 9 for inpainting UNets (latents + mask + masked-image latents). */
  inChannels: number;
  io: FloatIO;
  /** Defaults to TINY_UNET_SIZE. */
  size?: UNetSize;
}

/** Makes the graph builder; a caller may pass one that also counts parameters. */
export type BuilderFactory = (name: string, seed: number) => GraphBuilder;

const newBuilder: BuilderFactory = (name, seed) => new GraphBuilder(name, seed);

/** diffusers' get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0): [cos | sin]. */
export function timestepEmbedding(b: GraphBuilder, t: string, dim: number): string {
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / half);
  const args = b.op('Mul', [b.op('Unsqueeze', [t, b.int64([1])]), b.tensor('freqs', [1, half], freqs)]);
  return b.op('Concat', [b.op('Cos', [args]), b.op('Sin', [args])], { axis: 1 });
}

export function resnet(b: GraphBuilder, size: UNetSize, name: string, x: string, tembAct: string, inCh: number, outCh: number): string {
  return b.scope(name, () => {
    let h = conv(b, 'conv1', silu(b, groupNorm(b, 'norm1', x, inCh, size.groups)), inCh, outCh);
    const t = linear2d(b, 'time_emb_proj', tembAct, size.timeEmbedDim, outCh);
    h = b.op('Add', [h, b.op('Unsqueeze', [t, b.int64([2, 3])])]);
    h = conv(b, 'conv2', silu(b, groupNorm(b, 'norm2', h, outCh, size.groups)), outCh, outCh, { gain: 0.7 });
    const shortcut = inCh === outCh ? x : conv(b, 'conv_shortcut', x, inCh, outCh, { kernel: 1 });
    return b.op('Add', [shortcut, h]);
  });
}

/** BasicTransformerBlock on [B, tokens, ch]: self-attention, cross-attention on `context`, GEGLU feed-forward. */
export function basicTransformerBlock(b: GraphBuilder, size: UNetSize, t: string, context: string, ch: number): string {
  const heads = size.heads;
  const n1 = layerNorm(b, 'norm1', t, ch);
  let u = b.op('Add', [t, attention(b, 'attn1', n1, n1, { heads, dim: ch, kvDim: ch, qkvBias: false })]);
  const n2 = layerNorm(b, 'norm2', u, ch);
  const cross = attention(b, 'attn2', n2, context, { heads, dim: ch, kvDim: size.crossAttentionDim, qkvBias: false, outGain: 2 });
  u = b.op('Add', [u, cross]);
  const n3 = layerNorm(b, 'norm3', u, ch);
  const ff = b.scope('ff', () => {
    const inner = 4 * ch;
    const [value, gate] = b.opN('Split', [linear3d(b, 'geglu_proj', n3, ch, 2 * inner), b.int64([inner, inner])], 2, { axis: -1 });
    return linear3d(b, 'out', b.op('Mul', [value, gelu(b, gate)]), inner, ch);
  });
  return b.op('Add', [u, ff]);
}

/** Transformer2DModel with one BasicTransformerBlock, as in SD 1.5 (conv proj_in/proj_out). */
function transformer(b: GraphBuilder, size: UNetSize, name: string, x: string, context: string, ch: number): string {
  return b.scope(name, () => {
    const normed = groupNorm(b, 'norm', x, ch, size.groups, 1e-6);
    const projected = conv(b, 'proj_in', normed, ch, ch, { kernel: 1 });
    // [B, C, h, w] → [B, h·w, C]
    let t = b.op('Transpose', [b.op('Reshape', [projected, b.int64([0, ch, -1])])], { perm: [0, 2, 1] });
    t = b.scope('transformer_blocks.0', () => basicTransformerBlock(b, size, t, context, ch));
    const back = b.op('Reshape', [b.op('Transpose', [t], { perm: [0, 2, 1] }), b.op('Shape', [x])]);
    return b.op('Add', [conv(b, 'proj_out', back, ch, ch, { kernel: 1 }), x]);
  });
}

/** The value after conv_in → … → last up block, and its channels. */
export interface Body {
  h: string;
  channels: number;
}

/** The tiny sets' layout (see the file comment); the spec may only change its sizes. */
function tinyBody(b: GraphBuilder, size: UNetSize, h0: string, tembAct: string, context: string): Body {
  const [c0, c1] = size.blockOutChannels;
  if (size.blockOutChannels.length !== 2 || size.layersPerBlock !== 1 || size.crossAttention[0] || !size.crossAttention[1]) {
    throw new Error("the 'tiny' UNet layout has two levels, one resnet each, and a transformer on the second only");
  }
  const skip = resnet(b, size, 'down_blocks.0.resnets.0', h0, tembAct, c0, c0);
  // stride-2 3×3 conv with padding 1, as diffusers' Downsample2D(use_conv=True, padding=1)
  let h = conv(b, 'down_blocks.0.downsamplers.0.conv', skip, c0, c0, { stride: 2 });
  // A second downsample puts attention at 1/4 of the latent size: 256 tokens for 512 px images,
  // which keeps a step affordable on software WebGPU (SwiftShader) in tests.
  h = conv(b, 'down_blocks.1.downsamplers.0.conv', h, c0, c0, { stride: 2 });
  h = resnet(b, size, 'down_blocks.1.resnets.0', h, tembAct, c0, c1);
  h = transformer(b, size, 'down_blocks.1.attentions.0', h, context, c1);
  h = b.scope('up_blocks.0.upsamplers.0', () => conv(b, 'conv', resizeNearestLike(b, h, skip), c1, c1));
  h = b.op('Concat', [h, skip], { axis: 1 });
  return { h: resnet(b, size, 'up_blocks.1.resnets.0', h, tembAct, c1 + c0, c0), channels: c0 };
}

/** Makes a Transformer2DModel: SD 1.5's (conv projections) or another family's; `level` is the block's (the mid block's is the last). */
export type TransformerFactory = (b: GraphBuilder, size: UNetSize, name: string, x: string, context: string, ch: number, level: number) => string;

/**
 * SD 1.5's UNet2DConditionModel layout (diffusers' down/mid/up blocks, skips popped in reverse).
 * SDXL's differs in its transformers only (linear projections, several blocks), hence `makeTransformer`.
 */
export function sdBody(
  b: GraphBuilder,
  size: UNetSize,
  h0: string,
  tembAct: string,
  context: string,
  makeTransformer: TransformerFactory = transformer,
): Body {
  const ch = size.blockOutChannels;
  const levels = ch.length;
  const skips: Body[] = [{ h: h0, channels: ch[0] }];
  let cur: Body = { h: h0, channels: ch[0] };
  const block = (prefix: string, j: number, level: number, inCh: number, x: string): Body => {
    let h = resnet(b, size, `${prefix}.resnets.${j}`, x, tembAct, inCh, ch[level]);
    if (size.crossAttention[level]) h = makeTransformer(b, size, `${prefix}.attentions.${j}`, h, context, ch[level], level);
    return { h, channels: ch[level] };
  };

  for (let level = 0; level < levels; level++) {
    for (let j = 0; j < size.layersPerBlock; j++) {
      cur = block(`down_blocks.${level}`, j, level, cur.channels, cur.h);
      skips.push(cur);
    }
    if (level < levels - 1) {
      // Downsample2D(use_conv=True, padding=1): 3×3, stride 2, padding 1
      cur = { h: conv(b, `down_blocks.${level}.downsamplers.0.conv`, cur.h, cur.channels, cur.channels, { stride: 2 }), channels: cur.channels };
      skips.push(cur);
    }
  }

  const top = ch[levels - 1];
  cur = { h: resnet(b, size, 'mid_block.resnets.0', cur.h, tembAct, top, top), channels: top };
  cur = { h: makeTransformer(b, size, 'mid_block.attentions.0', cur.h, context, top, levels - 1), channels: top };
  cur = { h: resnet(b, size, 'mid_block.resnets.1', cur.h, tembAct, top, top), channels: top };

  for (let i = 0; i < levels; i++) {
    const level = levels - 1 - i;
    for (let j = 0; j <= size.layersPerBlock; j++) {
      const skip = skips.pop();
      if (!skip) throw new Error('UNet skips ran out');
      const joined = b.op('Concat', [cur.h, skip.h], { axis: 1 });
      cur = block(`up_blocks.${i}`, j, level, cur.channels + skip.channels, joined);
    }
    if (level > 0) {
      // Upsample2D: nearest to the next skip's size (×2 for sizes divisible by 8, diffusers'
      // upsample_size otherwise), then a 3×3 conv
      const like = skips[skips.length - 1].h;
      const up = b.scope(`up_blocks.${i}.upsamplers.0`, () => conv(b, 'conv', resizeNearestLike(b, cur.h, like), cur.channels, cur.channels));
      cur = { h: up, channels: cur.channels };
    }
  }
  if (skips.length !== 0) throw new Error(`${skips.length} UNet skips left over`);
  return cur;
}

export function buildUNet(spec: UNetSpec, makeBuilder: BuilderFactory = newBuilder): GraphBuilder {
  const size = spec.size ?? TINY_UNET_SIZE;
  const c0 = size.blockOutChannels[0];
  // the inpainting UNet's weights differ from the plain one's: its own seed stream
  const b = makeBuilder('unet', spec.inChannels === LATENT_CHANNELS ? SEED : SEED + spec.inChannels);
  const sample = floatInput(b, 'sample', ['batch', spec.inChannels, 'height', 'width'], spec.io);
  const timestep =
    spec.io === 'float32'
      ? b.op('Cast', [b.input('timestep', DType.INT64, ['batch'])], { to: DType.FLOAT })
      : b.op('Cast', [b.input('timestep', DType.FLOAT16, ['batch'])], { to: DType.FLOAT });
  const context = floatInput(b, 'encoder_hidden_states', ['batch', 'sequence', size.crossAttentionDim], spec.io);

  const tembAct = b.scope('time_embedding', () => {
    const proj = timestepEmbedding(b, timestep, c0);
    const hidden = silu(b, linear2d(b, 'linear_1', proj, c0, size.timeEmbedDim));
    // every resnet's time_emb_proj reads SiLU(temb), so it is computed once
    return silu(b, linear2d(b, 'linear_2', hidden, size.timeEmbedDim, size.timeEmbedDim));
  });

  const h0 = conv(b, 'conv_in', sample, spec.inChannels, c0);
  const body = size.layout === 'tiny' ? tinyBody(b, size, h0, tembAct, context) : sdBody(b, size, h0, tembAct, context);
  const h = silu(b, groupNorm(b, 'conv_norm_out', body.h, body.channels, size.groups));
  const out = conv(b, 'conv_out', h, body.channels, LATENT_CHANNELS, { gain: size.outGain, biasStd: 0 });
  floatOutput(b, 'out_sample', out, ['batch', LATENT_CHANNELS, 'height', 'width'], spec.io);
  return b;
}

/**
 * The trainable parameters of the UNet this size describes, counted the way torch counts
 * UNet2DConditionModel's (SD 1.5's sizes give its 859,520,964): an independent check of the graph.
 */
export function unetParameterCount(size: UNetSize, inChannels = LATENT_CHANNELS): number {
  if (size.layout !== 'sd') throw new Error('unetParameterCount covers the sd layout');
  const T = size.timeEmbedDim;
  const ch = size.blockOutChannels;
  const convP = (i: number, o: number, k: number) => o * i * k * k + o;
  const linear = (i: number, o: number, bias = true) => i * o + (bias ? o : 0);
  const norm = (c: number) => 2 * c;
  const res = (i: number, o: number) => norm(i) + convP(i, o, 3) + linear(T, o) + norm(o) + convP(o, o, 3) + (i === o ? 0 : convP(i, o, 1));
  const attn = (c: number, kv: number) => linear(c, c, false) + 2 * linear(kv, c, false) + linear(c, c);
  const xf = (c: number) =>
    norm(c) + 2 * convP(c, c, 1) + 3 * norm(c) + attn(c, c) + attn(c, size.crossAttentionDim) + linear(c, 8 * c) + linear(4 * c, c);

  let n = linear(ch[0], T) + linear(T, T) + convP(inChannels, ch[0], 3);
  const skipCh = [ch[0]];
  let cur = ch[0];
  ch.forEach((c, level) => {
    for (let j = 0; j < size.layersPerBlock; j++) {
      n += res(cur, c) + (size.crossAttention[level] ? xf(c) : 0);
      cur = c;
      skipCh.push(c);
    }
    if (level < ch.length - 1) {
      n += convP(c, c, 3);
      skipCh.push(c);
    }
  });
  n += 2 * res(cur, cur) + xf(cur);
  for (let level = ch.length - 1; level >= 0; level--) {
    for (let j = 0; j <= size.layersPerBlock; j++) {
      n += res(cur + (skipCh.pop() ?? 0), ch[level]) + (size.crossAttention[level] ? xf(ch[level]) : 0);
      cur = ch[level];
    }
    if (level > 0) n += convP(cur, cur, 3);
  }
  return n + norm(ch[0]) + convP(ch[0], LATENT_CHANNELS, 3);
}

export function unetConfig(spec: UNetSpec): Record<string, unknown> {
  const size = spec.size ?? TINY_UNET_SIZE;
  const levels = size.blockOutChannels.map((_, i) => i);
  const down = levels.map((i) => (size.crossAttention[i] ? 'CrossAttnDownBlock2D' : 'DownBlock2D'));
  // the tiny layout's up path has no transformer
  const up = [...levels].reverse().map((i) => (size.layout === 'sd' && size.crossAttention[i] ? 'CrossAttnUpBlock2D' : 'UpBlock2D'));
  return {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: '0.27.0',
    act_fn: 'silu',
    attention_head_dim: size.heads,
    block_out_channels: [...size.blockOutChannels],
    center_input_sample: false,
    cross_attention_dim: size.crossAttentionDim,
    down_block_types: down,
    downsample_padding: 1,
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: spec.inChannels,
    layers_per_block: size.layersPerBlock,
    mid_block_scale_factor: 1,
    norm_eps: 1e-5,
    norm_num_groups: size.groups,
    out_channels: LATENT_CHANNELS,
    sample_size: SAMPLE_SIZE,
    up_block_types: up,
  };
}
