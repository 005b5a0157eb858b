/**
 * Every catalogue model as a user gets it, against tiny replicas of its real repositories (the
 * stand-in hub serves them under their real names; huggingface.co is routed there): the download
 * with every shard verified, then text2img (and img2img where the model has a VAE encoder) through
 * window.sdapi, on WASM and on WebGPU. What a model cannot do is refused before a byte is fetched.
 */
import type { Page } from '@playwright/test';
import { MOCK_HUB, expect, openApp, sdapiCall, test } from './fixtures.ts';
import { REAL_MODELS } from '../../src/models/real-models.ts';

/** Sends the page's huggingface.co traffic to the stand-in hub (redirects passed through, as the hub's 302s are); returns the URLs asked for. */
async function routeHub(page: Page): Promise<string[]> {
  const asked: string[] = [];
  await page.context().route('https://huggingface.co/**', async (route) => {
    const url = new URL(route.request().url());
    asked.push(url.pathname);
    const response = await route.fetch({ url: `${MOCK_HUB}${url.pathname}${url.search}`, maxRedirects: 0 });
    await route.fulfill({ response });
  });
  return asked;
}

const request = (overrides: Record<string, unknown>) => ({
  prompt: 'a lighthouse at dusk', negative_prompt: null, samples: '1', num_inference_steps: '2', seed: 5, ...overrides,
});

for (const entry of REAL_MODELS) {
  test(`${entry.id}: downloads from its replica, shards verified, and generates through window.sdapi`, async ({ page, expectedBackend }) => {
    const asked = await routeHub(page);
    await openApp(page, expectedBackend, { model: 'tiny-sd', mode: 'local' });
    const size = entry.limits!.fixedSize ?? { width: 64, height: 64 };
    const base = { model_id: entry.id, width: size.width, height: size.height, guidance_scale: entry.defaults!.guidanceScale };

    if (entry.limits!.modes.img2img !== true) {
      // refused before anything is fetched
      const refused = await sdapiCall(page, 'img2img', request({ ...base, init_image: 'https://images.test/x.png', strength: 0.5 }));
      expect(refused.status).toBe('error');
      expect(JSON.stringify(refused.message)).toMatch(/no VAE encoder/);
      expect(asked).toEqual([]);
    }
    if (entry.limits!.fixedSize) {
      const wrong = await sdapiCall(page, 'text2img', request({ ...base, width: size.width / 2 }));
      expect(wrong).toMatchObject({ status: 'error', message: { width: [expect.stringMatching(new RegExp(`only generates ${size.width}x${size.height}`))] } });
      expect(asked).toEqual([]);
    }

    const r = await sdapiCall(page, 'text2img', request(base));
    expect(r.status, JSON.stringify(r.message)).toBe('success');
    expect(r.meta).toMatchObject({ model: entry.id, W: size.width, H: size.height });
    // every file the catalogue names was fetched, each external-data shard among them
    const fetched = new Set(asked);
    for (const f of entry.source.files) expect(fetched.has(new URL(f.url!).pathname), f.url).toBe(true);
    const cached = await page.evaluate(async (id) => (await window.sdapi!.modelStore!.status(id))?.complete, entry.id);
    expect(cached).toBe(true);

    if (entry.limits!.modes.img2img === true) {
      const init = await page.evaluate(async () => {
        const c = new OffscreenCanvas(64, 64);
        const ctx = c.getContext('2d')!;
        ctx.fillStyle = '#4a8';
        ctx.fillRect(0, 0, 64, 64);
        const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
        let s = '';
        for (const b of bytes) s += String.fromCharCode(b);
        return `data:image/png;base64,${btoa(s)}`;
      });
      const img = await sdapiCall(page, 'img2img', request({ ...base, init_image: init, strength: 0.6 }));
      expect(img.status, JSON.stringify(img.message)).toBe('success');
    }
  });
}
