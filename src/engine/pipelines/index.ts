/**
 * The pipeline families, one file each as in diffusers' pipelines/, sharing denoising-loop.ts.
 * A model's descriptor names its family; the family turns a prompt into the UNet's conditioning.
 */
import type { PipelineFamily } from '../../models/model-descriptor.ts';
import type { PromptConditioning, PromptRequest, TextEncoder } from './prompt-encoding.ts';
import { encodeStableDiffusionPrompt } from './stable-diffusion.ts';
import { encodeStableDiffusionXLPrompt } from './stable-diffusion-xl.ts';

export interface FamilyEncoders {
  family: PipelineFamily;
  /** text_encoder, and for SDXL text_encoder_2. */
  encoders: TextEncoder[];
  forceZerosForEmptyPrompt: boolean;
}

export function encodePrompt(f: FamilyEncoders, request: PromptRequest): Promise<PromptConditioning> {
  switch (f.family) {
    case 'stable-diffusion':
      return encodeStableDiffusionPrompt(f.encoders[0], request);
    case 'stable-diffusion-xl': {
      const [first, second] = f.encoders;
      if (!second) throw new Error('an SDXL model needs text_encoder_2');
      return encodeStableDiffusionXLPrompt({ first, second, forceZerosForEmptyPrompt: f.forceZerosForEmptyPrompt }, request);
    }
  }
}
