/**
 * SDXL's UNet2DConditionModel (addition_embed_type "text_time") scaled down, with the five inputs of
 * the real ONNX exports: sample, timestep, encoder_hidden_states (both encoders' penultimate states
 * concatenated per token), text_embeds (encoder 2's projected pooled state) and time_ids
 * (original size, crop top-left, target size).
 *
 * The add embedding is diffusers': each time id through the sinusoidal embedding
 * (addition_time_embed_dim each), flattened, appended to text_embeds, then Linear → SiLU → Linear
 * and added to the timestep embedding before the resnets' SiLU. The blocks are SD's (tools'
 * sdBody) with SDXL's transformers: linear proj_in/proj_out and several blocks per transformer.
 *
 * The layout is not SDXL's three levels: two attention-free levels come first, so that attention
 * runs at 1/4 of the latent size or less (1024 tokens at 1024 px), which software WebGPU affords.
 *
 * Options make replicas of the real exports: float16 I/O, the timestep's dtype and shape (int64
 * [B] in older exports, a float scalar in newer ones, float16 [1] in fp16 ones), fixed dims.
 */
import { GraphBuilder, type Dim } from '../onnx/graph.ts';
import { conv, groupNorm, linear2d, linear3d, silu } from '../onnx/layers.ts';
import { DType, type DTypeCode } from '../onnx/proto.ts';
import { floatInput, floatOutput, LATENT_CHANNELS, SEED, type FloatIO } from './common.ts';
import { SDXL_TEXT_ENCODER_2_SIZE, SDXL_TEXT_ENCODER_SIZE, SDXL_TEXT_PROJECTION_DIM } from './sdxl-text-encoders.ts';
import { basicTransformerBlock, sdBody, timestepEmbedding, unetConfig, type TransformerFactory, type UNetSize } from './unet.ts';

/** SDXL's time_ids: original (h, w), crop top-left (y, x), target (h, w). */
export const TIME_IDS = 6;

export interface SdxlUNetSize extends UNetSize {
  /** BasicTransformerBlocks per transformer, per level (diffusers' transformer_layers_per_block; the mid block uses the last). */
  transformerLayers: readonly number[];
  /** Sinusoidal features per time id (SDXL: 256). */
  additionTimeEmbedDim: number;
  /** Features of text_embeds: text_encoder_2's projection_dim (SDXL: 1280). */
  textEmbedsDim: number;
}

export const TINY_SDXL_UNET_SIZE: SdxlUNetSize = {
  layout: 'sd',
  blockOutChannels: [16, 16, 32, 32],
  layersPerBlock: 1,
  crossAttention: [false, false, true, true],
  transformerLayers: [1, 1, 1, 2],
  heads: 2,
  crossAttentionDim: SDXL_TEXT_ENCODER_SIZE.hidden + SDXL_TEXT_ENCODER_2_SIZE.hidden,
  timeEmbedDim: 4 * 16,
  groups: 8,
  outGain: 1.6,
  additionTimeEmbedDim: 8,
  textEmbedsDim: SDXL_TEXT_PROJECTION_DIM,
};

export type TimestepDType = 'int64' | 'float32' | 'float16';

export interface TimestepSpec {
  dtype: TimestepDType;
  /** [] for a scalar, ['batch'] (or a fixed batch) for one per sample, [1] for one shared. */
  dims: Dim[];
}

/** Fixed dims of a replica (e.g. sample [1, 4, 64, 64]); unset dims stay symbolic. */
export interface UNetFixedDims {
  batch?: number;
  height?: number;
  width?: number;
  sequence?: number;
}

export interface SdxlUNetSpec {
  /** Type of sample, encoder_hidden_states, text_embeds, time_ids and out_sample. Default float32. */
  io?: FloatIO;
  /** Default: int64 [batch] with float32 I/O, float16 [batch] with float16 I/O. */
  timestep?: TimestepSpec;
  fixed?: UNetFixedDims;
  size?: SdxlUNetSize;
}

const TIMESTEP_TYPES: Record<TimestepDType, DTypeCode> = { int64: DType.INT64, float32: DType.FLOAT, float16: DType.FLOAT16 };

const SEED_UNET = SEED + 200;

interface ResolvedDims {
  batch: Dim;
  height: Dim;
  width: Dim;
  sequence: Dim;
}

function resolveDims(fixed: UNetFixedDims | undefined): ResolvedDims {
  return {
    batch: fixed?.batch ?? 'batch',
    height: fixed?.height ?? 'height',
    width: fixed?.width ?? 'width',
    sequence: fixed?.sequence ?? 'sequence',
  };
}

export function defaultTimestep(io: FloatIO, batch: Dim = 'batch'): TimestepSpec {
  return io === 'float32' ? { dtype: 'int64', dims: [batch] } : { dtype: 'float16', dims: [batch] };
}

/** Transformer2DModel with use_linear_projection (SDXL's): Linear proj_in/proj_out around `transformerLayers[level]` blocks. */
function linearProjectionTransformer(size: SdxlUNetSize): TransformerFactory {
  return (b, _size, name, x, context, ch, level) =>
    b.scope(name, () => {
      const normed = groupNorm(b, 'norm', x, ch, size.groups, 1e-6);
      // [B, C, h, w] → [B, h·w, C], then the projection, in the order diffusers applies them
      let t = b.op('Transpose', [b.op('Reshape', [normed, b.int64([0, ch, -1])])], { perm: [0, 2, 1] });
      t = linear3d(b, 'proj_in', t, ch, ch);
      for (let i = 0; i < size.transformerLayers[level]; i++) {
        t = b.scope(`transformer_blocks.${i}`, () => basicTransformerBlock(b, size, t, context, ch));
      }
      t = linear3d(b, 'proj_out', t, ch, ch);
      const back = b.op('Reshape', [b.op('Transpose', [t], { perm: [0, 2, 1] }), b.op('Shape', [x])]);
      return b.op('Add', [back, x]);
    });
}

/** The timestep as float32 [B]: a scalar or [1] is broadcast over the batch, as diffusers' expand(sample.shape[0]). */
function timestepPerSample(b: GraphBuilder, spec: TimestepSpec, batch: Dim, sample: string): string {
  const raw = b.input('timestep', TIMESTEP_TYPES[spec.dtype], spec.dims);
  const t = b.op('Cast', [raw], { to: DType.FLOAT });
  if (spec.dims.length === 1 && spec.dims[0] === batch) return t;
  const flat = b.op('Reshape', [t, b.int64([-1])]);
  const batchShape = b.op('Slice', [b.op('Shape', [sample]), b.int64([0]), b.int64([1]), b.int64([0])]);
  return b.op('Expand', [flat, batchShape]);
}

export function buildSdxlUNet(spec: SdxlUNetSpec = {}): GraphBuilder {
  const size = spec.size ?? TINY_SDXL_UNET_SIZE;
  const io = spec.io ?? 'float32';
  const d = resolveDims(spec.fixed);
  const tsSpec = spec.timestep ?? defaultTimestep(io, d.batch);
  const c0 = size.blockOutChannels[0];
  const addDim = size.additionTimeEmbedDim;
  const b = new GraphBuilder('unet', SEED_UNET);

  const sample = floatInput(b, 'sample', [d.batch, LATENT_CHANNELS, d.height, d.width], io);
  const timestep = timestepPerSample(b, tsSpec, d.batch, sample);
  const context = floatInput(b, 'encoder_hidden_states', [d.batch, d.sequence, size.crossAttentionDim], io);
  const textEmbeds = floatInput(b, 'text_embeds', [d.batch, size.textEmbedsDim], io);
  const timeIds = floatInput(b, 'time_ids', [d.batch, TIME_IDS], io);

  const temb = b.scope('time_embedding', () => {
    const proj = timestepEmbedding(b, timestep, c0);
    return linear2d(b, 'linear_2', silu(b, linear2d(b, 'linear_1', proj, c0, size.timeEmbedDim)), size.timeEmbedDim, size.timeEmbedDim);
  });
  const aug = b.scope('add_embedding', () => {
    const perId = b.scope('add_time_proj', () => timestepEmbedding(b, b.op('Reshape', [timeIds, b.int64([-1])]), addDim));
    const timeEmbeds = b.op('Reshape', [perId, b.int64([-1, TIME_IDS * addDim])]);
    const addEmbeds = b.op('Concat', [textEmbeds, timeEmbeds], { axis: 1 });
    const inF = size.textEmbedsDim + TIME_IDS * addDim;
    return linear2d(b, 'linear_2', silu(b, linear2d(b, 'linear_1', addEmbeds, inF, size.timeEmbedDim)), size.timeEmbedDim, size.timeEmbedDim);
  });
  // every resnet's time_emb_proj reads SiLU(temb + aug), so it is computed once
  const tembAct = silu(b, b.op('Add', [temb, aug]));

  const h0 = conv(b, 'conv_in', sample, LATENT_CHANNELS, c0);
  const body = sdBody(b, size, h0, tembAct, context, linearProjectionTransformer(size));
  const h = silu(b, groupNorm(b, 'conv_norm_out', body.h, body.channels, size.groups));
  const out = conv(b, 'conv_out', h, body.channels, LATENT_CHANNELS, { gain: size.outGain, biasStd: 0 });
  floatOutput(b, 'out_sample', out, [d.batch, LATENT_CHANNELS, d.height, d.width], io);
  return b;
}

/** SDXL base 1.0's latent size (1024 px images). */
export const SDXL_SAMPLE_SIZE = 128;

export function sdxlUNetConfig(spec: SdxlUNetSpec = {}): Record<string, unknown> {
  const size = spec.size ?? TINY_SDXL_UNET_SIZE;
  return {
    ...unetConfig({ inChannels: LATENT_CHANNELS, io: spec.io ?? 'float32', size }),
    addition_embed_type: 'text_time',
    addition_time_embed_dim: size.additionTimeEmbedDim,
    projection_class_embeddings_input_dim: size.textEmbedsDim + TIME_IDS * size.additionTimeEmbedDim,
    sample_size: SDXL_SAMPLE_SIZE,
    transformer_layers_per_block: [...size.transformerLayers],
    use_linear_projection: true,
  };
}
