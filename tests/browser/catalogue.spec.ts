/**
 * Every catalogue model as a user gets it, against tiny replicas of its real repositories (the
 * stand-in hub serves them under their real names, as a Hugging Face mirror set in Settings): the download
 * with every shard verified, then text2img (and img2img where the model has a VAE encoder) through
 * window.sdapi, on WASM and on WebGPU. What a model cannot do is refused before a byte is fetched.
 */
import type { Page } from '@playwright/test';
import { MOCK_HUB, expect, openApp, pngFromPage, sdapiCall, test } from './fixtures.ts';
import { REAL_MODELS } from '../../src/models/real-models.ts';

interface HubRequest { method: string; kind: string; file: string | null }

async function hub(path: string, init?: RequestInit): Promise<unknown> {
  const r = await fetch(`${MOCK_HUB}${path}`, init);
  return r.headers.get('content-type')?.includes('json') ? r.json() : null;
}

/** The files of `repos` the hub was asked for (resolve URLs, as the catalogue names them). */
async function fetchedFrom(repos: Set<string>): Promise<Set<string>> {
  const log = (await hub('/_requests')) as HubRequest[];
  return new Set(log.filter((r) => r.kind === 'resolve' && r.file && repos.has(r.file.split('/').slice(0, 2).join('/'))).map((r) => r.file!));
}

/** The app downloads catalogue models from a Hugging Face mirror (Settings), here the stand-in hub. */
async function useHubMirror(page: Page): Promise<void> {
  await page.addInitScript((mirror) => localStorage.setItem('sdapi.hubMirror', mirror), MOCK_HUB);
  await hub('/_requests', { method: 'DELETE' });
}

const request = (overrides: Record<string, unknown>) => ({
  prompt: 'a lighthouse at dusk', negative_prompt: null, samples: '1', num_inference_steps: '2', seed: 5, ...overrides,
});

for (const entry of REAL_MODELS) {
  test(`${entry.id}: downloads from its replica, shards verified, and generates through window.sdapi`, async ({ page, expectedBackend }) => {
    await useHubMirror(page);
    await openApp(page, expectedBackend, { model: 'tiny-sd', mode: 'local' });
    const entryRepos = new Set(entry.source.files.map((f) => new URL(f.url!).pathname.split('/').slice(1, 3).join('/')));
    const size = entry.limits!.fixedSize ?? { width: 64, height: 64 };
    const base = { model_id: entry.id, width: size.width, height: size.height, guidance_scale: entry.defaults!.guidanceScale };

    if (entry.limits!.modes.img2img !== true) {
      // refused before anything is fetched
      const refused = await sdapiCall(page, 'img2img', request({ ...base, init_image: 'https://images.test/x.png', strength: 0.5 }));
      expect(refused.status).toBe('error');
      expect(JSON.stringify(refused.message)).toMatch(/no VAE encoder/);
      expect(await fetchedFrom(entryRepos)).toEqual(new Set());
    }
    if (entry.limits!.fixedSize) {
      const wrong = await sdapiCall(page, 'text2img', request({ ...base, width: size.width / 2 }));
      expect(wrong).toMatchObject({ status: 'error', message: { width: [expect.stringMatching(new RegExp(`only generates ${size.width}x${size.height}`))] } });
      expect(await fetchedFrom(entryRepos)).toEqual(new Set());
    }

    const r = await sdapiCall(page, 'text2img', request(base));
    expect(r.status, JSON.stringify(r.message)).toBe('success');
    expect(r.meta).toMatchObject({ model: entry.id, W: size.width, H: size.height });
    // On the project's backend, except that an fp16 export needs an adapter with shader-f16, which SwiftShader lacks:
    // there the engine says so and runs it on WASM (a GPU with shader-f16 runs it on WebGPU).
    const shaderF16 = await page.evaluate(() => window.sdapi!.backend?.shaderF16 ?? false);
    if (expectedBackend === 'webgpu' && entry.dtype !== 'fp32' && !shaderF16) {
      expect(r.meta).toMatchObject({ backend: 'wasm', backend_reason: expect.stringMatching(/float16 .*no shader-f16/) });
    } else {
      expect(r.meta!.backend, String(r.meta!.backend_reason)).toBe(expectedBackend);
    }
    // every file the catalogue names was fetched, each external-data shard among them
    const fetched = await fetchedFrom(entryRepos);
    for (const f of entry.source.files) expect(fetched.has(new URL(f.url!).pathname.slice(1).replace('/resolve/main/', '/')), f.url).toBe(true);
    const cached = await page.evaluate(async (id) => (await window.sdapi!.modelStore!.status(id))?.complete, entry.id);
    expect(cached).toBe(true);

    if (entry.limits!.modes.img2img === true) {
      const init = `data:image/png;base64,${(await pngFromPage(page, 64, 64, '#4a8')).toString('base64')}`;
      const img = await sdapiCall(page, 'img2img', request({ ...base, init_image: init, strength: 0.6 }));
      expect(img.status, JSON.stringify(img.message)).toBe('success');
    }
  });
}
