/**
 * CLIP's text model scaled down: token + position embedding, one pre-LayerNorm transformer layer
 * (causal self-attention, GELU MLP), final LayerNorm; pooler_output is the final hidden state at
 * the first <|endoftext|> (CLIP's argmax(input_ids) for a vocabulary whose end token has the
 * highest id), computed without ArgMax, which is not in our WebGPU op list.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import { attention, gelu, layerNorm, linear3d, shapeSlice, weight } from '../onnx/layers.ts';
import { DType } from '../onnx/proto.ts';
import { floatOutput, SEED, TEXT_HEADS, TEXT_HIDDEN, TEXT_LAYERS, type FloatIO } from './common.ts';
import { MAX_LENGTH } from './tokenizer.ts';

export interface TextEncoderSize {
  hidden: number;
  heads: number;
  layers: number;
}

/** The tiny sets' text encoder: today's constants. */
export const TINY_TEXT_ENCODER_SIZE: TextEncoderSize = { hidden: TEXT_HIDDEN, heads: TEXT_HEADS, layers: TEXT_LAYERS };

export interface TextEncoderSpec {
  vocabSize: number;
  endId: number;
  io: FloatIO;
  /** Defaults to TINY_TEXT_ENCODER_SIZE. */
  size?: TextEncoderSize;
  /** config.json's _name_or_path; defaults to the tiny sets'. */
  nameOrPath?: string;
}

/** The values a CLIP text transformer yields, by the names transformers gives them. */
export interface ClipTextValues {
  /** The embeddings, then each layer's output (before final_layer_norm): transformers' hidden_states, layers + 1 of them. */
  hiddenStates: string[];
  /** final_layer_norm of the last layer's output. */
  lastHiddenState: string;
  /** lastHiddenState at the first end token, [batch, hidden]. */
  pooled: string;
}

export interface ClipTextBodySpec {
  vocabSize: number;
  endId: number;
  size: TextEncoderSize;
}

/**
 * The text transformer on `ids` (int32 or int64 [batch, sequence]), without declaring outputs, so
 * that the SDXL encoders can expose hidden_states and a projection from the same graph.
 */
export function clipTextBody(b: GraphBuilder, ids: string, spec: ClipTextBodySpec): ClipTextValues {
  const size = spec.size;
  const D = size.hidden;
  const seqLen = shapeSlice(b, ids, 1, 2);
  const seqLen2 = b.op('Concat', [seqLen, seqLen], { axis: 0 });

  let h = b.scope('embeddings', () => {
    const tok = b.op('Gather', [weight(b, 'token_embedding', [spec.vocabSize, D], 1), ids], { axis: 0 });
    const posTable = weight(b, 'position_embedding', [MAX_LENGTH, D], 0.5);
    const pos = b.op('Slice', [posTable, b.int64([0]), seqLen, b.int64([0])]);
    return b.op('Add', [tok, pos]);
  });
  const hiddenStates = [h];

  // Large negative rather than -inf above the diagonal, like transformers' finfo.min mask: no inf arithmetic.
  const causal = new Float32Array(MAX_LENGTH * MAX_LENGTH);
  for (let i = 0; i < MAX_LENGTH; i++) for (let j = i + 1; j < MAX_LENGTH; j++) causal[i * MAX_LENGTH + j] = -1e9;
  const mask = b.op('Slice', [b.tensor('causal_mask', [MAX_LENGTH, MAX_LENGTH], causal), b.int64([0, 0]), seqLen2, b.int64([0, 1])]);

  for (let layer = 0; layer < size.layers; layer++) {
    h = b.scope(`encoder/layers.${layer}`, () => {
      const normed1 = layerNorm(b, 'layer_norm1', h, D);
      const attn = attention(b, 'self_attn', normed1, normed1, { heads: size.heads, dim: D, kvDim: D, qkvBias: true, scoreBias: mask });
      const h1 = b.op('Add', [h, attn]);
      const normed2 = layerNorm(b, 'layer_norm2', h1, D);
      const mlp = b.scope('mlp', () => linear3d(b, 'fc2', gelu(b, linear3d(b, 'fc1', normed2, D, 4 * D)), 4 * D, D));
      return b.op('Add', [h1, mlp]);
    });
    hiddenStates.push(h);
  }
  const last = layerNorm(b, 'final_layer_norm', h, D);

  const pooled = b.scope('pooler', () => {
    const notEnd = b.op('Cast', [b.op('Sub', [b.op('Cast', [ids], { to: DType.FLOAT }), b.scalar(spec.endId)])], { to: DType.BOOL });
    const isEnd = b.op('Where', [notEnd, b.scalar(0), b.scalar(1)]);
    // strictly upper triangular ones: (isEnd · U)[j] counts end tokens before position j
    const upper = new Float32Array(MAX_LENGTH * MAX_LENGTH);
    for (let i = 0; i < MAX_LENGTH; i++) for (let j = i + 1; j < MAX_LENGTH; j++) upper[i * MAX_LENGTH + j] = 1;
    const upperS = b.op('Slice', [b.tensor('strict_upper', [MAX_LENGTH, MAX_LENGTH], upper), b.int64([0, 0]), seqLen2, b.int64([0, 1])]);
    const endsBefore = b.op('MatMul', [isEnd, upperS]);
    const first = b.op('Mul', [isEnd, b.op('Where', [b.op('Cast', [endsBefore], { to: DType.BOOL }), b.scalar(0), b.scalar(1)])]);
    const picked = b.op('MatMul', [b.op('Unsqueeze', [first, b.int64([1])]), last]);
    return b.op('Reshape', [picked, b.int64([0, D])]);
  });
  return { hiddenStates, lastHiddenState: last, pooled };
}

export function buildTextEncoder(spec: TextEncoderSpec): GraphBuilder {
  const size = spec.size ?? TINY_TEXT_ENCODER_SIZE;
  const D = size.hidden;
  const b = new GraphBuilder('text_encoder', SEED);
  const ids = b.input('input_ids', DType.INT32, ['batch', 'sequence']);
  const { lastHiddenState, pooled } = clipTextBody(b, ids, { vocabSize: spec.vocabSize, endId: spec.endId, size });
  floatOutput(b, 'last_hidden_state', lastHiddenState, ['batch', 'sequence', D], spec.io);
  floatOutput(b, 'pooler_output', pooled, ['batch', D], spec.io);
  return b;
}

export function textEncoderConfig(spec: TextEncoderSpec, startId: number): Record<string, unknown> {
  const size = spec.size ?? TINY_TEXT_ENCODER_SIZE;
  return {
    _name_or_path: spec.nameOrPath ?? 'sd-browser/tiny-sd',
    architectures: ['CLIPTextModel'],
    attention_dropout: 0,
    bos_token_id: startId,
    eos_token_id: spec.endId,
    hidden_act: 'gelu',
    hidden_size: size.hidden,
    initializer_factor: 1,
    initializer_range: 0.02,
    intermediate_size: 4 * size.hidden,
    layer_norm_eps: 1e-5,
    max_position_embeddings: MAX_LENGTH,
    model_type: 'clip_text_model',
    num_attention_heads: size.heads,
    num_hidden_layers: size.layers,
    pad_token_id: spec.endId,
    projection_dim: size.hidden,
    torch_dtype: spec.io,
    vocab_size: spec.vocabSize,
  };
}
