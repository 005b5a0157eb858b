/**
 * SDXL's two text encoders scaled down, with the I/O of the optimum / browser-demo ONNX exports:
 *
 * - text_encoder (CLIPTextModel, CLIP ViT-L): input_ids int32; last_hidden_state, pooler_output,
 *   hidden_states.0 … hidden_states.L.
 * - text_encoder_2 (CLIPTextModelWithProjection, OpenCLIP bigG): input_ids int64; text_embeds (the
 *   pooled state through a bias-free text_projection), last_hidden_state, hidden_states.0 … .L.
 *
 * SDXL reads hidden_states.(L-1) of each, so both have at least two layers: the penultimate state
 * is then a layer's output, not the embeddings, and differs from last_hidden_state. The hidden
 * sizes differ (32 and 48) so that a pipeline concatenating them in the wrong order fails a test.
 */
import { GraphBuilder, type Dim } from '../onnx/graph.ts';
import { linear3d } from '../onnx/layers.ts';
import { DType } from '../onnx/proto.ts';
import { floatOutput, SEED, type FloatIO } from './common.ts';
import { clipTextBody, textEncoderConfig, type TextEncoderSize } from './text-encoder.ts';

export const SDXL_TEXT_ENCODER_SIZE: TextEncoderSize = { hidden: 32, heads: 2, layers: 2 };
export const SDXL_TEXT_ENCODER_2_SIZE: TextEncoderSize = { hidden: 48, heads: 2, layers: 3 };
/** bigG's projection_dim equals its hidden size (1280); the tiny one keeps that. */
export const SDXL_TEXT_PROJECTION_DIM = 48;

/** Fixed dims of a replica (WebNN-style exports fix batch and sequence); unset dims stay symbolic. */
export interface TextEncoderFixedDims {
  batch?: number;
  sequence?: number;
}

export interface SdxlTextEncoderSpec {
  vocabSize: number;
  endId: number;
  /** float32 or float16 outputs (the ids are integers either way). */
  io?: FloatIO;
  size?: TextEncoderSize;
  fixed?: TextEncoderFixedDims;
}

export interface SdxlTextEncoder2Spec extends SdxlTextEncoderSpec {
  projectionDim?: number;
}

// Separate weight streams: the first encoder would otherwise share its first layer with tiny-sd's.
const SEED_TEXT_ENCODER = SEED + 101;
const SEED_TEXT_ENCODER_2 = SEED + 102;

function dims(fixed: TextEncoderFixedDims | undefined): { batch: Dim; sequence: Dim } {
  return { batch: fixed?.batch ?? 'batch', sequence: fixed?.sequence ?? 'sequence' };
}

function hiddenStateOutputs(b: GraphBuilder, states: string[], batch: Dim, sequence: Dim, hidden: number, io: FloatIO): void {
  states.forEach((value, i) => floatOutput(b, `hidden_states.${i}`, value, [batch, sequence, hidden], io));
}

/** SDXL's text_encoder: outputs last_hidden_state, pooler_output, hidden_states.0 … .layers, in that order. */
export function buildSdxlTextEncoder(spec: SdxlTextEncoderSpec): GraphBuilder {
  const size = spec.size ?? SDXL_TEXT_ENCODER_SIZE;
  const io = spec.io ?? 'float32';
  const { batch, sequence } = dims(spec.fixed);
  const D = size.hidden;
  const b = new GraphBuilder('text_encoder', SEED_TEXT_ENCODER);
  const ids = b.input('input_ids', DType.INT32, [batch, sequence]);
  const v = clipTextBody(b, ids, { vocabSize: spec.vocabSize, endId: spec.endId, size });
  floatOutput(b, 'last_hidden_state', v.lastHiddenState, [batch, sequence, D], io);
  floatOutput(b, 'pooler_output', v.pooled, [batch, D], io);
  hiddenStateOutputs(b, v.hiddenStates, batch, sequence, D, io);
  return b;
}

/** SDXL's text_encoder_2: outputs text_embeds, last_hidden_state, hidden_states.0 … .layers, in that order. */
export function buildSdxlTextEncoder2(spec: SdxlTextEncoder2Spec): GraphBuilder {
  const size = spec.size ?? SDXL_TEXT_ENCODER_2_SIZE;
  const io = spec.io ?? 'float32';
  const P = spec.projectionDim ?? SDXL_TEXT_PROJECTION_DIM;
  const { batch, sequence } = dims(spec.fixed);
  const D = size.hidden;
  const b = new GraphBuilder('text_encoder_2', SEED_TEXT_ENCODER_2);
  // int64 as bigG's exports declare it (torch's default id dtype), unlike the first encoder's int32
  const ids = b.input('input_ids', DType.INT64, [batch, sequence]);
  const v = clipTextBody(b, ids, { vocabSize: spec.vocabSize, endId: spec.endId, size });
  const textEmbeds = linear3d(b, 'text_projection', v.pooled, D, P, { bias: false });
  floatOutput(b, 'text_embeds', textEmbeds, [batch, P], io);
  floatOutput(b, 'last_hidden_state', v.lastHiddenState, [batch, sequence, D], io);
  hiddenStateOutputs(b, v.hiddenStates, batch, sequence, D, io);
  return b;
}

export function sdxlTextEncoderConfig(spec: SdxlTextEncoderSpec, startId: number): Record<string, unknown> {
  const size = spec.size ?? SDXL_TEXT_ENCODER_SIZE;
  return {
    ...textEncoderConfig({ vocabSize: spec.vocabSize, endId: spec.endId, io: spec.io ?? 'float32', size, nameOrPath: 'sd-browser/tiny-sdxl' }, startId),
  };
}

/** The tokenizer_2 pad token "!" is id 0 in CLIP's vocabulary and in the tiny one. */
export function sdxlTextEncoder2Config(spec: SdxlTextEncoder2Spec, startId: number, padId: number): Record<string, unknown> {
  const size = spec.size ?? SDXL_TEXT_ENCODER_2_SIZE;
  return {
    ...textEncoderConfig({ vocabSize: spec.vocabSize, endId: spec.endId, io: spec.io ?? 'float32', size, nameOrPath: 'sd-browser/tiny-sdxl' }, startId),
    architectures: ['CLIPTextModelWithProjection'],
    pad_token_id: padId,
    projection_dim: spec.projectionDim ?? SDXL_TEXT_PROJECTION_DIM,
  };
}
