/**
 * The SDXL family (SDXL, SDXL-Turbo, SDXL-Lightning): diffusers' StableDiffusionXLPipeline
 * encode_prompt and _get_add_time_ids.
 * - Each prompt goes through both tokenizers and text encoders; each encoder gives its penultimate
 *   hidden state (hidden_states[-2]), and the two are concatenated per token: [B, 77, 768 + 1280].
 * - The pooled embedding is text_encoder_2's projected `text_embeds` [B, 1280].
 * - time_ids are original size + crop top-left + target size: [H, W, 0, 0, H, W].
 * - Under guidance, an empty negative prompt is zeros (embeddings and pooled) where the model sets
 *   force_zeros_for_empty_prompt (SDXL's default); otherwise the negative prompt is encoded like the prompt.
 */
import type { HostTensor } from '../runtime.ts';
import { concatBatch, repeatBatch } from '../tensor-batch.ts';
import { output, type PromptConditioning, type PromptRequest, type TextEncoder } from './prompt-encoding.ts';

export interface StableDiffusionXLEncoders {
  first: TextEncoder;
  second: TextEncoder;
  forceZerosForEmptyPrompt: boolean;
}

/**
 * diffusers' hidden_states[-2]: of the outputs hidden_states.0 (embeddings) … hidden_states.N (last
 * layer), the one before the last. Exports that keep a single hidden_states output (the WebNN ones
 * prune the rest) keep the one the pipeline reads, so that one is used.
 */
export function penultimateHiddenState(outputs: Record<string, HostTensor>): HostTensor {
  const indices = Object.keys(outputs)
    .map((name) => /^hidden_states\.(\d+)$/.exec(name))
    .flatMap((m) => (m ? [Number(m[1])] : []))
    .sort((a, b) => a - b);
  if (indices.length === 0) {
    throw new Error(`an SDXL text encoder must output its hidden states (hidden_states.N); this one has ${Object.keys(outputs).join(', ')}`);
  }
  const index = indices.length === 1 ? indices[0] : indices[indices.length - 2];
  return outputs[`hidden_states.${index}`];
}

/** add_time_ids for a batch of one: original_size + crops_coords_top_left + target_size, (height, width) order. */
export function sdxlTimeIds(width: number, height: number): HostTensor {
  return { data: Float32Array.of(height, width, 0, 0, height, width), dims: [1, 6] };
}

/** [B, L, D1] and [B, L, D2] -> [B, L, D1 + D2], per token. */
export function concatLastAxis(a: HostTensor, b: HostTensor): HostTensor {
  const [batch, length, d1] = a.dims;
  const d2 = b.dims[2];
  if (b.dims[0] !== batch || b.dims[1] !== length) throw new Error(`hidden states of shapes [${a.dims}] and [${b.dims}] do not concatenate`);
  const out = new Float32Array(batch * length * (d1 + d2));
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  for (let row = 0; row < batch * length; row++) {
    out.set(x.subarray(row * d1, (row + 1) * d1), row * (d1 + d2));
    out.set(y.subarray(row * d2, (row + 1) * d2), row * (d1 + d2) + d1);
  }
  return { data: out, dims: [batch, length, d1 + d2] };
}

const zerosLike = (t: HostTensor): HostTensor => ({ data: new Float32Array(t.data.length), dims: [...t.dims] });

/** Both encoders over one batch of texts: the concatenated hidden states and the pooled embedding. */
async function encodeTexts(e: StableDiffusionXLEncoders, texts: string[]): Promise<{ hidden: HostTensor; pooled: HostTensor }> {
  const firstOut = await e.first.run(texts.map((t) => e.first.tokenizer.encodeDetailed(t).ids));
  const secondOut = await e.second.run(texts.map((t) => e.second.tokenizer.encodeDetailed(t).ids));
  return {
    hidden: concatLastAxis(penultimateHiddenState(firstOut), penultimateHiddenState(secondOut)),
    pooled: output(secondOut, 'text_embeds', e.second.firstOutput),
  };
}

export async function encodeStableDiffusionXLPrompt(e: StableDiffusionXLEncoders, request: PromptRequest): Promise<PromptConditioning> {
  const zeroNegative = request.guided && e.forceZerosForEmptyPrompt && request.negativePrompt === '';
  const texts = request.guided && !zeroNegative ? [request.negativePrompt, request.prompt] : [request.prompt];
  let { hidden, pooled } = await encodeTexts(e, texts);
  if (zeroNegative) {
    hidden = concatBatch([zerosLike(hidden), hidden]);
    pooled = concatBatch([zerosLike(pooled), pooled]);
  }
  const truncated = [e.first, e.second].some((enc) => enc.tokenizer.encodeDetailed(request.prompt).truncated);
  return {
    conditioning: { encoder_hidden_states: hidden, text_embeds: pooled, time_ids: repeatBatch(sdxlTimeIds(request.width, request.height), request.guided ? 2 : 1) },
    truncated,
  };
}
