/**
 * A model described from its own files: which pipeline family it is, which components it has,
 * which modes it can run and what its graphs fix (batch, image size, I/O types). Everything after
 * the store asks the descriptor instead of assuming: the engine picks its pipeline and shapes from
 * it, and requests a model cannot serve are refused before anything is downloaded (catalogue
 * entries carry the same limits, declared; models added by URL get them from their small graphs).
 *
 * Sources, in order of trust: the graphs' declared inputs and outputs (readGraphInfo), then
 * model_index.json (diffusers' component names and the pipeline class), then which files exist.
 */
import type { GraphInfo, GraphValue } from './onnx-graph.ts';

export type PipelineFamily = 'stable-diffusion' | 'stable-diffusion-xl';
export type GenerationMode = 'text2img' | 'img2img' | 'inpaint';
export const GENERATION_MODES: readonly GenerationMode[] = ['text2img', 'img2img', 'inpaint'];

/** diffusers' component folders that hold ONNX graphs. */
export type GraphComponent = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae_decoder' | 'vae_encoder' | 'safety_checker';
export const GRAPH_COMPONENTS: readonly GraphComponent[] = ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder', 'safety_checker'];

/** What a request must respect; catalogue entries declare it, descriptors derive it. */
export interface ModelLimits {
  /** true where the mode runs, otherwise why not (for the user). */
  modes: Record<GenerationMode, true | string>;
  /** The only image size the graphs take, when they fix it. */
  fixedSize: { width: number; height: number } | null;
}

/** Why a model without a VAE encoder runs neither img2img nor inpaint (catalogue entries declare it in these words too). */
export const NO_VAE_ENCODER = 'this model has no VAE encoder (vae_encoder/), so it cannot take an init image; use text2img, or a model that has one';

/** A model that runs every mode at any size (the bundled tiny models, and models not described yet). */
export const ANY_REQUEST: ModelLimits = { modes: { text2img: true, img2img: true, inpaint: true }, fixedSize: null };

export interface ModelDescriptor extends ModelLimits {
  family: PipelineFamily;
  /** model_index.json's `_class_name`, when there is one. */
  pipelineClass: string | null;
  components: GraphComponent[];
  unet: {
    /** The batch `sample` is fixed to, or null when free. */
    fixedBatch: number | null;
    /** `sample`'s channels: 4, or 9 for inpainting UNets; null when not fixed. */
    inChannels: number | null;
    /** The float type of `sample` (the UNet's I/O). */
    ioType: string;
    /** Inputs beyond sample and timestep, by name: the conditioning the pipeline must supply. */
    conditioning: string[];
  };
  /** SDXL's `force_zeros_for_empty_prompt`: an empty negative prompt is zeros, not the encoding of "". */
  forceZerosForEmptyPrompt: boolean;
}

export interface DescriptorSources {
  /** model_index.json, parsed; null where the repository has none. */
  modelIndex: Record<string, unknown> | null;
  /** The graphs by component, as read from their bytes. */
  graphs: Partial<Record<GraphComponent, GraphInfo>>;
  /** Pixels per latent (2 ** (len(vae block_out_channels) - 1)); 8 for every SD VAE. */
  vaeScaleFactor?: number;
}

const value = (values: GraphValue[], name: string) => values.find((v) => v.name === name);
const fixed = (d: number | string | undefined): number | null => (typeof d === 'number' && d > 0 ? d : null);

function familyOf(s: DescriptorSources): PipelineFamily {
  const cls = typeof s.modelIndex?._class_name === 'string' ? s.modelIndex._class_name : '';
  const unetInputs = s.graphs.unet?.inputs ?? [];
  if (/XL/.test(cls) || s.graphs.text_encoder_2 || value(unetInputs, 'text_embeds') || value(unetInputs, 'time_ids')) return 'stable-diffusion-xl';
  return 'stable-diffusion';
}

export function describeModel(s: DescriptorSources): ModelDescriptor {
  const family = familyOf(s);
  const components = GRAPH_COMPONENTS.filter((c) => s.graphs[c] !== undefined);
  const unetInputs = s.graphs.unet?.inputs ?? [];
  const sample = value(unetInputs, 'sample');
  const scale = s.vaeScaleFactor ?? 8;
  const [batch, channels, h, w] = sample?.dims ?? [];
  const latentH = fixed(h);
  const latentW = fixed(w);
  const inChannels = fixed(channels);
  const fixedSize = latentH !== null && latentW !== null ? { width: latentW * scale, height: latentH * scale } : null;

  const noEncoder = NO_VAE_ENCODER;
  const inpaintingUNet = inChannels === 9;
  const modes: Record<GenerationMode, true | string> = {
    text2img: inpaintingUNet ? 'this is an inpainting model (its UNet takes 9 channels: latents, mask and masked image); use inpaint' : true,
    img2img: inpaintingUNet ? 'this is an inpainting model (its UNet takes 9 channels); use inpaint' : s.graphs.vae_encoder ? true : noEncoder,
    inpaint: s.graphs.vae_encoder ? true : noEncoder,
  };
  for (const needed of ['text_encoder', 'unet', 'vae_decoder'] as const) {
    if (s.graphs[needed]) continue;
    for (const m of GENERATION_MODES) modes[m] = `this model has no ${needed}/ graph`;
  }
  if (family === 'stable-diffusion-xl' && !s.graphs.text_encoder_2) {
    for (const m of GENERATION_MODES) modes[m] = 'this SDXL model has no text_encoder_2/ graph';
  }

  const force = s.modelIndex?.force_zeros_for_empty_prompt;
  return {
    family,
    pipelineClass: typeof s.modelIndex?._class_name === 'string' ? s.modelIndex._class_name : null,
    components,
    modes,
    fixedSize,
    unet: {
      fixedBatch: fixed(batch),
      inChannels,
      ioType: sample?.type || 'float32',
      conditioning: unetInputs.map((i) => i.name).filter((n) => n !== 'sample' && n !== 'timestep'),
    },
    // diffusers' SDXL pipelines default to true; SD 1.x/2.x have no such option
    forceZerosForEmptyPrompt: family === 'stable-diffusion-xl' ? force !== false : false,
  };
}

/** Why a request cannot run on a model with these limits (the field at fault and the reason), or null. */
export function limitRefusal(limits: ModelLimits, request: { mode: GenerationMode; width: number; height: number }, modelName: string): { field: string; message: string } | null {
  const mode = limits.modes[request.mode];
  if (mode !== true) return { field: 'model_id', message: `${modelName} cannot run ${request.mode}: ${mode}.` };
  const size = limits.fixedSize;
  if (size && (request.width !== size.width || request.height !== size.height)) {
    const field = request.width !== size.width ? 'width' : 'height';
    return {
      field,
      message: `${modelName} only generates ${size.width}x${size.height} images (its graphs fix that size); ask for width ${size.width} and height ${size.height}.`,
    };
  }
  return null;
}
