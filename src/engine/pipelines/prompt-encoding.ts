/**
 * What every family's prompt encoding shares: the request, the text encoders as functions of
 * token ids, and the result (the UNet's conditioning by input name, batched for guidance).
 */
import type { HostTensor } from '../runtime.ts';
import type { ClipTokenizer } from '../tokenizer.ts';
import type { Conditioning } from './denoising-loop.ts';

export interface PromptRequest {
  prompt: string;
  negativePrompt: string;
  /** Classifier-free guidance: the conditioning is [uncond, cond] along the batch, else [cond]. */
  guided: boolean;
  width: number;
  height: number;
}

/** A text encoder run on token ids [B, L]: every output by name, batch first. */
export type TextEncoderRun = (ids: Int32Array[]) => Promise<Record<string, HostTensor>>;

export interface TextEncoder {
  run: TextEncoderRun;
  tokenizer: ClipTokenizer;
  /** The output the graph lists first, for exports that name theirs differently. */
  firstOutput: string;
}

export interface PromptConditioning {
  conditioning: Conditioning;
  /** Whether the prompt was longer than the tokenizer's length and was cut. */
  truncated: boolean;
}

/** The named output, or the first one where the export names it otherwise. */
export function output(outputs: Record<string, HostTensor>, name: string, first: string): HostTensor {
  const t = outputs[name] ?? outputs[first];
  if (!t) throw new Error(`the text encoder has no output "${name}" (it has ${Object.keys(outputs).join(', ')})`);
  return t;
}
