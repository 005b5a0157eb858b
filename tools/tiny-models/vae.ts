/**
 * Tiny AutoencoderKL halves. Random: stride-2 convs with GroupNorm + SiLU down by 8 to the 4
 * latent channels, and conv + nearest ×2 upsampling three times back to RGB, scaled so that
 * latents have roughly the spread of SD's (std ≈ 1/scaling_factor) and decoded images span about
 * [-1, 1]. Analytic: an 8×8 block average (4th channel = mean of RGB) divided by the scaling
 * factor, and its inverse up to the block average: channels 0..2 × scaling factor, nearest ×8.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import { conv, groupNorm, resizeNearestScale, silu } from '../onnx/layers.ts';
import { DType } from '../onnx/proto.ts';
import { floatInput, floatOutput, GROUPS, LATENT_CHANNELS, SAMPLE_SIZE, SCALING_FACTOR, SEED, VAE_CHANNELS, type FloatIO } from './common.ts';

const IMAGE_DIMS = ['batch', 3, 'height', 'width'];
const LATENT_DIMS = ['batch', LATENT_CHANNELS, 'latent_height', 'latent_width'];

export function buildVaeEncoder(io: FloatIO): GraphBuilder {
  const C = VAE_CHANNELS;
  const b = new GraphBuilder('vae_encoder', SEED);
  const image = floatInput(b, 'sample', IMAGE_DIMS, io);
  let h = conv(b, 'encoder.conv_in', image, 3, C);
  for (let i = 0; i < 3; i++) {
    // diffusers' Downsample2D pads (0, 1, 0, 1) then convolves unpadded: out = floor(in / 2)
    h = conv(b, `encoder.down_blocks.${i}.downsamplers.0.conv`, silu(b, groupNorm(b, `encoder.down_blocks.${i}.norm`, h, C, GROUPS, 1e-6)), C, C, {
      stride: 2,
      pads: [0, 0, 1, 1],
    });
  }
  h = silu(b, groupNorm(b, 'encoder.conv_norm_out', h, C, GROUPS, 1e-6));
  const latent = conv(b, 'encoder.conv_out', h, C, LATENT_CHANNELS, { gain: 11, biasStd: 0.5 });
  floatOutput(b, 'latent_sample', latent, LATENT_DIMS, io);
  return b;
}

export function buildVaeDecoder(io: FloatIO): GraphBuilder {
  const C = VAE_CHANNELS;
  const b = new GraphBuilder('vae_decoder', SEED);
  const latent = floatInput(b, 'latent_sample', LATENT_DIMS, io);
  let h = conv(b, 'decoder.conv_in', latent, LATENT_CHANNELS, C, { gain: 0.5 });
  for (let i = 0; i < 3; i++) {
    h = b.scope(`decoder.up_blocks.${i}`, () => {
      const up = conv(b, 'upsamplers.0.conv', resizeNearestScale(b, h, 2), C, C);
      return silu(b, groupNorm(b, 'norm', up, C, GROUPS, 1e-6));
    });
  }
  const image = conv(b, 'decoder.conv_out', h, C, 3, { gain: 0.6, biasStd: 0 });
  floatOutput(b, 'sample', image, IMAGE_DIMS, io);
  return b;
}

export function buildAnalyticVaeEncoder(): GraphBuilder {
  const b = new GraphBuilder('vae_encoder_analytic', SEED);
  const image = b.input('sample', DType.FLOAT, IMAGE_DIMS);
  const rgb = b.op('AveragePool', [image], { kernel_shape: [8, 8], strides: [8, 8] });
  const gray = b.op('ReduceMean', [rgb], { axes: [1], keepdims: 1 });
  const blocks = b.op('Concat', [rgb, gray], { axis: 1 });
  b.output('latent_sample', b.op('Div', [blocks, b.scalar(SCALING_FACTOR)]), DType.FLOAT, LATENT_DIMS);
  return b;
}

export function buildAnalyticVaeDecoder(): GraphBuilder {
  const b = new GraphBuilder('vae_decoder_analytic', SEED);
  const latent = b.input('latent_sample', DType.FLOAT, LATENT_DIMS);
  const rgb = b.op('Slice', [latent, b.int64([0]), b.int64([3]), b.int64([1])]);
  const scaled = b.op('Mul', [rgb, b.scalar(SCALING_FACTOR)]);
  b.output('sample', resizeNearestScale(b, scaled, 8), DType.FLOAT, IMAGE_DIMS);
  return b;
}

export function vaeConfig(): Record<string, unknown> {
  return {
    _class_name: 'AutoencoderKL',
    _diffusers_version: '0.27.0',
    act_fn: 'silu',
    block_out_channels: [VAE_CHANNELS, VAE_CHANNELS, VAE_CHANNELS, VAE_CHANNELS],
    down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
    in_channels: 3,
    latent_channels: LATENT_CHANNELS,
    layers_per_block: 1,
    norm_num_groups: GROUPS,
    out_channels: 3,
    sample_size: SAMPLE_SIZE * 8,
    scaling_factor: SCALING_FACTOR,
    up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  };
}
