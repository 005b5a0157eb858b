/**
 * A tiny UNet2DConditionModel with the operator kinds of SD's: conv_in, sinusoidal timestep
 * embedding → Linear → SiLU → Linear, resnet blocks (GroupNorm, SiLU, 3×3 conv, time projection),
 * two stride-2 downsamples, a transformer block (self- and cross-attention, GEGLU feed-forward) at the
 * quarter-size level only, nearest upsampling to the skip's size, skip concat, conv_out.
 * Weights are seeded; gains are chosen so that out_sample has a standard deviation near 1.
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

export interface UNetSpec {
  /** 4, or 9 for inpainting UNets (latents + mask + masked-image latents). */
  inChannels: number;
  io: FloatIO;
}

/** diffusers' get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0): [cos | sin]. */
function timestepEmbedding(b: GraphBuilder, t: string, dim: number): string {
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / half);
  const args = b.op('Mul', [b.op('Unsqueeze', [t, b.int64([1])]), b.tensor('freqs', [1, half], freqs)]);
  return b.op('Concat', [b.op('Cos', [args]), b.op('Sin', [args])], { axis: 1 });
}

function resnet(b: GraphBuilder, name: string, x: string, tembAct: string, inCh: number, outCh: number): string {
  return b.scope(name, () => {
    let h = conv(b, 'conv1', silu(b, groupNorm(b, 'norm1', x, inCh, GROUPS)), inCh, outCh);
    const t = linear2d(b, 'time_emb_proj', tembAct, UNET_TIME_DIM, outCh);
    h = b.op('Add', [h, b.op('Unsqueeze', [t, b.int64([2, 3])])]);
    h = conv(b, 'conv2', silu(b, groupNorm(b, 'norm2', h, outCh, GROUPS)), outCh, outCh, { gain: 0.7 });
    const shortcut = inCh === outCh ? x : conv(b, 'conv_shortcut', x, inCh, outCh, { kernel: 1 });
    return b.op('Add', [shortcut, h]);
  });
}

/** Transformer2DModel with one BasicTransformerBlock, as in SD 1.5 (conv proj_in/proj_out). */
function transformer(b: GraphBuilder, name: string, x: string, context: string, ch: number): string {
  return b.scope(name, () => {
    const normed = groupNorm(b, 'norm', x, ch, GROUPS, 1e-6);
    const projected = conv(b, 'proj_in', normed, ch, ch, { kernel: 1 });
    // [B, C, h, w] → [B, h·w, C]
    let t = b.op('Transpose', [b.op('Reshape', [projected, b.int64([0, ch, -1])])], { perm: [0, 2, 1] });
    t = b.scope('transformer_blocks.0', () => {
      const n1 = layerNorm(b, 'norm1', t, ch);
      let u = b.op('Add', [t, attention(b, 'attn1', n1, n1, { heads: UNET_HEADS, dim: ch, kvDim: ch, qkvBias: false })]);
      const n2 = layerNorm(b, 'norm2', u, ch);
      const cross = attention(b, 'attn2', n2, context, { heads: UNET_HEADS, dim: ch, kvDim: TEXT_HIDDEN, qkvBias: false, outGain: 2 });
      u = b.op('Add', [u, cross]);
      const n3 = layerNorm(b, 'norm3', u, ch);
      const ff = b.scope('ff', () => {
        const inner = 4 * ch;
        const [value, gate] = b.opN('Split', [linear3d(b, 'geglu_proj', n3, ch, 2 * inner), b.int64([inner, inner])], 2, { axis: -1 });
        return linear3d(b, 'out', b.op('Mul', [value, gelu(b, gate)]), inner, ch);
      });
      return b.op('Add', [u, ff]);
    });
    const back = b.op('Reshape', [b.op('Transpose', [t], { perm: [0, 2, 1] }), b.op('Shape', [x])]);
    return b.op('Add', [conv(b, 'proj_out', back, ch, ch, { kernel: 1 }), x]);
  });
}

export function buildUNet(spec: UNetSpec): GraphBuilder {
  const C = UNET_CHANNELS;
  // the inpainting UNet's weights differ from the plain one's: its own seed stream
  const b = new GraphBuilder('unet', spec.inChannels === LATENT_CHANNELS ? SEED : SEED + spec.inChannels);
  const sample = floatInput(b, 'sample', ['batch', spec.inChannels, 'height', 'width'], spec.io);
  const timestep =
    spec.io === 'float32'
      ? b.op('Cast', [b.input('timestep', DType.INT64, ['batch'])], { to: DType.FLOAT })
      : b.op('Cast', [b.input('timestep', DType.FLOAT16, ['batch'])], { to: DType.FLOAT });
  const context = floatInput(b, 'encoder_hidden_states', ['batch', 'sequence', TEXT_HIDDEN], spec.io);

  const tembAct = b.scope('time_embedding', () => {
    const proj = timestepEmbedding(b, timestep, C);
    const hidden = silu(b, linear2d(b, 'linear_1', proj, C, UNET_TIME_DIM));
    // every resnet's time_emb_proj reads SiLU(temb), so it is computed once
    return silu(b, linear2d(b, 'linear_2', hidden, UNET_TIME_DIM, UNET_TIME_DIM));
  });

  const h0 = conv(b, 'conv_in', sample, spec.inChannels, C);
  const skip = resnet(b, 'down_blocks.0.resnets.0', h0, tembAct, C, C);
  // stride-2 3×3 conv with padding 1, as diffusers' Downsample2D(use_conv=True, padding=1)
  let h = conv(b, 'down_blocks.0.downsamplers.0.conv', skip, C, C, { stride: 2 });
  // A second downsample puts attention at 1/4 of the latent size: 256 tokens for 512 px images,
  // which keeps a step affordable on software WebGPU (SwiftShader) in tests.
  h = conv(b, 'down_blocks.1.downsamplers.0.conv', h, C, C, { stride: 2 });
  h = resnet(b, 'down_blocks.1.resnets.0', h, tembAct, C, C);
  h = transformer(b, 'down_blocks.1.attentions.0', h, context, C);
  h = b.scope('up_blocks.0.upsamplers.0', () => conv(b, 'conv', resizeNearestLike(b, h, skip), C, C));
  h = b.op('Concat', [h, skip], { axis: 1 });
  h = resnet(b, 'up_blocks.1.resnets.0', h, tembAct, 2 * C, C);
  h = silu(b, groupNorm(b, 'conv_norm_out', h, C, GROUPS));
  const out = conv(b, 'conv_out', h, C, LATENT_CHANNELS, { gain: 1.6, biasStd: 0 });
  floatOutput(b, 'out_sample', out, ['batch', LATENT_CHANNELS, 'height', 'width'], spec.io);
  return b;
}

export function unetConfig(spec: UNetSpec): Record<string, unknown> {
  return {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: '0.27.0',
    act_fn: 'silu',
    attention_head_dim: UNET_HEADS,
    block_out_channels: [UNET_CHANNELS, UNET_CHANNELS],
    center_input_sample: false,
    cross_attention_dim: TEXT_HIDDEN,
    down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'],
    downsample_padding: 1,
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: spec.inChannels,
    layers_per_block: 1,
    mid_block_scale_factor: 1,
    norm_eps: 1e-5,
    norm_num_groups: GROUPS,
    out_channels: LATENT_CHANNELS,
    sample_size: SAMPLE_SIZE,
    up_block_types: ['UpBlock2D', 'UpBlock2D'],
  };
}
