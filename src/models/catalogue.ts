/**
 * The models the app can run: the tiny models the project generates at build time (listed with
 * sizes and sha256 in models/models.json beside them; tiny-sd is the offline default), the real
 * models of real-models.ts, and models a user adds by URL.
 */
import type { ModelFile, ModelSource } from './model-source.ts';
import { ANY_REQUEST, type ModelLimits, type PipelineFamily } from './model-descriptor.ts';

export interface ModelFeatures {
  /** Whether classifier-free guidance helps (distilled models such as SD-Turbo run without). */
  guidance: boolean;
  safetyChecker: boolean;
}

/** Recommended request defaults for the model. */
export interface ModelDefaults {
  steps: number;
  guidanceScale: number;
  scheduler?: string;
  width: number;
  height: number;
  strength: number;
}

export interface CatalogueEntry {
  id: string;
  name: string;
  description: string;
  source: ModelSource;
  features?: ModelFeatures;
  /** What the model's graphs allow: checked before anything is downloaded. */
  limits?: ModelLimits;
  family?: PipelineFamily;
  defaults?: ModelDefaults;
  /** Hugging Face repository, for real models. */
  repo?: string;
  dtype?: 'fp16' | 'fp32' | 'int8' | 'int4';
  license?: string;
  /** Approximate total download, for display and the quota check before sizes are known. */
  approxBytes?: number;
  /** Served by the app itself (the generated tiny models): always available, also offline. */
  bundled?: boolean;
}

const TINY_DEFAULTS: ModelDefaults = { steps: 20, guidanceScale: 7.5, width: 512, height: 512, strength: 0.7 };

export const DEFAULT_MODEL_ID = 'tiny-sd';

const DESCRIPTIONS: Record<string, string> = {
  'tiny-sd': 'Tiny generated SD-architecture model (seeded weights): offline demo and test model',
  'tiny-sd-analytic': 'Tiny analytic model: block-average VAE and ideal Gaussian denoiser, for checkable images',
  'tiny-sd-fp16io': 'Tiny model with float16 inputs and outputs, as fp16 exports have',
  'tiny-sd-inpaint': 'Tiny model with a 9-channel inpainting UNet',
};

type Manifest = Record<string, { files: ModelFile[] }>;

/**
 * TAESD (madebyollin/taesd, MIT): a 1.2M-parameter decoder of SD 1.x/2.x latents, used only for
 * live previews while a job runs, never as a generation model. tools/taesd.ts converts its
 * taesd_decoder.safetensors to decoder.onnx; the build bundles it as the model set "taesd" when
 * the weights are at hand. Elsewhere a user would fetch it from the Hugging Face hub like any
 * model (the same converted decoder.onnx, at a base URL of their choice); without it the previews
 * use the linear latent-to-RGB approximation.
 */
export const PREVIEW_DECODER_ID = 'taesd';

/** Reads the generated models' manifest at `manifestUrl`; each model's files sit beside it in a folder of its name. */
export async function loadGeneratedCatalogue(manifestUrl: string, fetchFn: typeof fetch): Promise<CatalogueEntry[]> {
  return (await loadGeneratedModels(manifestUrl, fetchFn)).models;
}

/** The ESRGAN super-resolution graphs (x2, x3, x4) converted at build time from @upscalerjs/esrgan-slim. */
export const UPSCALER_ID = 'esrgan';

/**
 * The generated models, TAESD's decoder for previews when the build bundled it, and the
 * super-resolution graphs: the last two are helpers, not models a request can name.
 */
export async function loadGeneratedModels(
  manifestUrl: string,
  fetchFn: typeof fetch,
): Promise<{ models: CatalogueEntry[]; previewDecoder: ModelSource | null; upscaler: ModelSource | null }> {
  const response = await fetchFn(manifestUrl);
  if (!response.ok) throw new Error(`the model list ${manifestUrl} could not be loaded (HTTP ${response.status})`);
  const manifest = (await response.json()) as Manifest;
  const helper = (id: string): ModelSource | null => {
    const entry = manifest[id];
    delete manifest[id];
    return entry && entry.files.length > 0 ? { id, baseUrl: new URL(`${id}/`, manifestUrl).href, files: entry.files } : null;
  };
  const previewDecoder = helper(PREVIEW_DECODER_ID);
  const upscaler = helper(UPSCALER_ID);
  const models = Object.entries(manifest).map(([id, { files }]): CatalogueEntry => ({
    id,
    name: id,
    description: DESCRIPTIONS[id] ?? 'Generated model',
    dtype: id.includes('fp16') ? 'fp16' : 'fp32',
    features: { guidance: true, safetyChecker: files.some((f) => f.path.startsWith('safety_checker/')) },
    limits: ANY_REQUEST,
    family: 'stable-diffusion',
    defaults: TINY_DEFAULTS,
    bundled: true,
    approxBytes: files.reduce((n, f) => n + (f.size ?? 0), 0),
    source: { id, baseUrl: new URL(`${id}/`, manifestUrl).href, files },
  }));
  return { models, previewDecoder, upscaler };
}

/** A model the user added by URL, with the files and limits its repository stated (repository-discovery.ts). */
export function customEntry(baseUrl: string, discovered: { files: ModelFile[]; limits: ModelLimits; family: PipelineFamily }, name?: string): CatalogueEntry {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const id = `custom:${base}`;
  const sdxl = discovered.family === 'stable-diffusion-xl';
  return {
    id,
    name: name ?? base.replace(/^https?:\/\//, '').replace(/\/resolve\/main\/$/, ''),
    description: `Added by URL: ${base}`,
    features: { guidance: true, safetyChecker: discovered.files.some((f) => f.path.startsWith('safety_checker/')) },
    limits: discovered.limits,
    family: discovered.family,
    defaults: {
      steps: 25, guidanceScale: 7.5,
      width: discovered.limits.fixedSize?.width ?? (sdxl ? 1024 : 512),
      height: discovered.limits.fixedSize?.height ?? (sdxl ? 1024 : 512),
      strength: 0.7,
    },
    source: { id, baseUrl: base, files: discovered.files },
  };
}

