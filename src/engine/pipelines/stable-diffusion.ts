/**
 * The Stable Diffusion 1.x/2.x family (and its distilled SD-Turbo): diffusers' StableDiffusionPipeline
 * encode_prompt. One CLIP text encoder; the UNet reads its last hidden state as encoder_hidden_states.
 * Under guidance the negative prompt (empty when none) is encoded too and goes first in the batch.
 */
import { output, type PromptConditioning, type PromptRequest, type TextEncoder } from './prompt-encoding.ts';

export async function encodeStableDiffusionPrompt(encoder: TextEncoder, request: PromptRequest): Promise<PromptConditioning> {
  const cond = encoder.tokenizer.encodeDetailed(request.prompt);
  const ids = request.guided ? [encoder.tokenizer.encodeDetailed(request.negativePrompt).ids, cond.ids] : [cond.ids];
  const outputs = await encoder.run(ids);
  const hidden = output(outputs, 'last_hidden_state', encoder.firstOutput);
  return { conditioning: { encoder_hidden_states: hidden }, truncated: cond.truncated };
}
