/**
 * The models the app can run. For now: the tiny models the project generates at build time
 * (listed with sizes and sha256 in models/models.json beside them); tiny-sd is the offline default.
 */
import type { ModelFile, ModelSource } from './model-source.ts';

export interface CatalogueEntry {
  id: string;
  name: string;
  description: string;
  source: ModelSource;
}

export const DEFAULT_MODEL_ID = 'tiny-sd';

const DESCRIPTIONS: Record<string, string> = {
  'tiny-sd': 'Tiny generated SD-architecture model (seeded weights): offline demo and test model',
  'tiny-sd-analytic': 'Tiny analytic model: block-average VAE and ideal Gaussian denoiser, for checkable images',
  'tiny-sd-fp16io': 'Tiny model with float16 inputs and outputs, as fp16 exports have',
  'tiny-sd-inpaint': 'Tiny model with a 9-channel inpainting UNet',
};

type Manifest = Record<string, { files: ModelFile[] }>;

/** Reads the generated models' manifest at `manifestUrl`; each model's files sit beside it in a folder of its name. */
export async function loadGeneratedCatalogue(manifestUrl: string, fetchFn: typeof fetch): Promise<CatalogueEntry[]> {
  const response = await fetchFn(manifestUrl);
  if (!response.ok) throw new Error(`the model list ${manifestUrl} could not be loaded (HTTP ${response.status})`);
  const manifest = (await response.json()) as Manifest;
  return Object.entries(manifest).map(([id, { files }]) => ({
    id,
    name: id,
    description: DESCRIPTIONS[id] ?? 'Generated model',
    source: { id, baseUrl: new URL(`${id}/`, manifestUrl).href, files },
  }));
}
