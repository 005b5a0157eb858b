/**
 * The v4 model_list call answered from the local catalogue, in the hosted list's shape: one object
 * per model with model_id, model_name, status ("model_ready" when it can run now), model_category
 * and description, plus what only a local list can say (downloaded, size, licence, repository).
 */
import type { CatalogueEntry } from '../models/catalogue.ts';
import type { ModelStatus } from '../models/model-store.ts';

export async function modelList(
  models: readonly CatalogueEntry[],
  status: (id: string) => Promise<ModelStatus | null>,
): Promise<Record<string, unknown>[]> {
  return Promise.all(models.map(async (m) => {
    // A status that cannot be read counts as not downloaded: the list still answers.
    const downloaded = m.bundled === true || Boolean((await status(m.id).catch(() => null))?.complete);
    return {
      model_id: m.id,
      model_name: m.name,
      status: downloaded ? 'model_ready' : 'not_downloaded',
      model_category: m.family === 'stable-diffusion-xl' ? 'stable_diffusion_xl' : 'stable_diffusion',
      description: m.description,
      is_nsfw: '0',
      // Beyond the hosted list: where it runs and what it costs to get.
      runtime: 'local',
      bundled: m.bundled === true,
      approx_bytes: m.approxBytes ?? null,
      license: m.license ?? null,
      repo: m.repo ?? null,
      dtype: m.dtype ?? null,
    };
  }));
}
