import { describe, expect, it } from 'vitest';
import { modelList } from '../../src/api/model-list.ts';
import type { CatalogueEntry } from '../../src/models/catalogue.ts';

const source = (id: string) => ({ id, baseUrl: `https://x.test/${id}/`, files: [] });

describe('model_list from the local catalogue', () => {
  it('answers the hosted list shape, ready when bundled or downloaded, with the local facts beside', async () => {
    const models: CatalogueEntry[] = [
      { id: 'tiny-sd', name: 'tiny-sd', description: 'demo', bundled: true, source: source('tiny-sd') },
      { id: 'sdxl-turbo', name: 'SDXL-Turbo', description: 'one step', family: 'stable-diffusion-xl', approxBytes: 4e9, license: 'other', source: source('sdxl-turbo') },
      { id: 'sd-turbo', name: 'SD-Turbo', description: 'fast', source: source('sd-turbo') },
    ];
    const downloaded = new Set(['sd-turbo']);
    const list = await modelList(models, async (id) => {
      if (id === 'sdxl-turbo') throw new Error('store unreadable');
      return { complete: downloaded.has(id) } as never;
    });
    expect(list.map((m) => [m.model_id, m.status, m.model_category])).toEqual([
      ['tiny-sd', 'model_ready', 'stable_diffusion'],
      ['sdxl-turbo', 'not_downloaded', 'stable_diffusion_xl'],
      ['sd-turbo', 'model_ready', 'stable_diffusion'],
    ]);
    expect(list[1]).toMatchObject({ model_name: 'SDXL-Turbo', approx_bytes: 4e9, license: 'other', runtime: 'local', is_nsfw: '0' });
  });
});
