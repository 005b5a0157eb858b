/** The model descriptor: family, modes, fixed shapes and conditioning read from the graphs' declared I/O and model_index.json. */
import { describe, expect, it } from 'vitest';
import { describeModel, limitRefusal, type DescriptorSources } from '../../src/models/model-descriptor.ts';
import type { GraphInfo, GraphValue } from '../../src/models/onnx-graph.ts';

const v = (name: string, type: string, dims: (number | string)[]): GraphValue => ({ name, type, dims });
const graph = (inputs: GraphValue[], outputs: GraphValue[] = []): GraphInfo => ({ inputs, outputs, externalData: [], domains: [''], opTypes: [] });

const textEncoder = graph([v('input_ids', 'int32', ['batch', 'sequence'])], [v('last_hidden_state', 'float32', ['batch', 'sequence', 768])]);
const vae = graph([v('latent_sample', 'float32', ['batch', 4, 'h', 'w'])]);
const sdUnet = (sample: (number | string)[], type = 'float32') => graph([v('sample', type, sample), v('timestep', 'int64', ['steps']), v('encoder_hidden_states', type, ['batch', 77, 768])]);

function sources(overrides: Partial<DescriptorSources['graphs']> = {}, modelIndex: Record<string, unknown> | null = null): DescriptorSources {
  return { modelIndex, graphs: { text_encoder: textEncoder, unet: sdUnet(['batch', 4, 'height', 'width']), vae_decoder: vae, vae_encoder: vae, ...overrides } };
}

describe('describeModel', () => {
  it('an SD export with free shapes runs every mode at any size', () => {
    const d = describeModel(sources());
    expect(d.family).toBe('stable-diffusion');
    expect(d.modes).toEqual({ text2img: true, img2img: true, inpaint: true });
    expect(d.fixedSize).toBeNull();
    expect(d.unet).toEqual({ fixedBatch: null, inChannels: 4, ioType: 'float32', conditioning: ['encoder_hidden_states'] });
    expect(d.forceZerosForEmptyPrompt).toBe(false);
  });

  it('a WebNN export fixed to batch 2 at 64x64 latents, without a VAE encoder: text2img at 512x512 only', () => {
    const d = describeModel(sources({ unet: sdUnet([2, 4, 64, 64], 'float16'), vae_encoder: undefined }));
    expect(d.fixedSize).toEqual({ width: 512, height: 512 });
    expect(d.unet.fixedBatch).toBe(2);
    expect(d.unet.ioType).toBe('float16');
    expect(d.modes.text2img).toBe(true);
    expect(d.modes.img2img).toMatch(/no VAE encoder/);
    expect(d.modes.inpaint).toMatch(/no VAE encoder/);
  });

  it('a 9-channel UNet is an inpainting model', () => {
    const d = describeModel(sources({ unet: sdUnet(['b', 9, 'h', 'w']) }));
    expect(d.modes.inpaint).toBe(true);
    expect(d.modes.text2img).toMatch(/inpainting model/);
    expect(d.modes.img2img).toMatch(/inpainting model/);
  });

  it('SDXL: from model_index.json or from the graphs, with its conditioning and force_zeros_for_empty_prompt', () => {
    const unet = graph([
      v('sample', 'float32', ['batch', 4, 'height', 'width']), v('timestep', 'int64', ['steps']), v('encoder_hidden_states', 'float32', ['batch', 77, 2048]),
      v('text_embeds', 'float32', ['batch', 1280]), v('time_ids', 'float32', ['batch', 6]),
    ]);
    const byGraphs = describeModel(sources({ unet, text_encoder_2: textEncoder }));
    expect(byGraphs.family).toBe('stable-diffusion-xl');
    expect(byGraphs.unet.conditioning).toEqual(['encoder_hidden_states', 'text_embeds', 'time_ids']);
    expect(byGraphs.forceZerosForEmptyPrompt).toBe(true);
    const index = { _class_name: 'StableDiffusionXLPipeline', force_zeros_for_empty_prompt: false };
    const byIndex = describeModel(sources({ unet, text_encoder_2: textEncoder }, index));
    expect(byIndex.pipelineClass).toBe('StableDiffusionXLPipeline');
    expect(byIndex.forceZerosForEmptyPrompt).toBe(false);
    expect(describeModel(sources({ unet }, index)).modes.text2img).toMatch(/text_encoder_2/);
  });
});

describe('limitRefusal', () => {
  const limits = describeModel(sources({ unet: sdUnet([2, 4, 64, 64]), vae_encoder: undefined }));
  it('names the mode or the size the model needs', () => {
    expect(limitRefusal(limits, { mode: 'text2img', width: 512, height: 512 }, 'SD 1.5')).toBeNull();
    expect(limitRefusal(limits, { mode: 'text2img', width: 256, height: 512 }, 'SD 1.5')).toEqual({
      field: 'width', message: 'SD 1.5 only generates 512x512 images (its graphs fix that size); ask for width 512 and height 512.',
    });
    expect(limitRefusal(limits, { mode: 'img2img', width: 512, height: 512 }, 'SD 1.5')?.message).toMatch(/^SD 1.5 cannot run img2img: this model has no VAE encoder/);
  });
});
