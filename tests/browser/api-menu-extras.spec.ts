/**
 * Outpainting through window.sdapi, and one call of every endpoint group remotely against the mock
 * hosted API (processing answers polled). The wasm project only (playwright.config.ts): outpainting
 * runs as inpainting, which img2img.spec.ts covers on WebGPU, and remote calls never touch the backend.
 */
import { ENDPOINT_GROUPS, ENDPOINTS } from '../../src/api/endpoints.ts';
import { decodePng, expect, img2img, MOCK_API, MOCK_KEY, openApp, serve, test, TEST_IMAGE_URL, testImagePng } from './fixtures.ts';

test.describe('outpainting, locally', () => {
  test('outpaint extends an image: the canvas size out, the original kept inside its seam band', async ({ page, expectedBackend }) => {
    await openApp(page, expectedBackend);
    const input = testImagePng(64, 64);
    await serve(page, TEST_IMAGE_URL, input, 'image/png');
    const { response, pngs } = await img2img(page, {
      key: '', prompt: 'a wider view', image: TEST_IMAGE_URL, width: 128, height: 64, overlap_width: 8, num_inference_steps: '3', seed: 7,
    }, 'outpaint');
    expect(response.status, JSON.stringify(response.message)).toBe('success');
    expect(response.meta).toMatchObject({ W: 128, H: 64, image: TEST_IMAGE_URL, overlap_width: 8, runtime: 'local' });
    const out = decodePng(pngs[0]);
    const src = decodePng(input);
    expect([out.width, out.height]).toEqual([128, 64]);
    // The image sits at x 32..95; deeper than the 8 px band it comes back exactly.
    let kept = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = 40; x < 88; x++) {
        for (let c = 0; c < 3; c++) expect(out.data[(y * 128 + x) * out.channels + c]).toBe(src.data[(y * 64 + x - 32) * src.channels + c]);
        kept++;
      }
    }
    expect(kept).toBe(48 * 64);
  });
});

test.describe('every group of the hosted menu, remotely', () => {
  test('one call per group answers through window.sdapi against the mock hosted API, processing answers polled', async ({ page, expectedBackend }) => {
    await openApp(page, expectedBackend, { mode: 'remote', endpoint: MOCK_API, key: MOCK_KEY });
    // The first call of each group that takes a prompt-like request; two groups go through a processing answer first.
    const picks = ENDPOINT_GROUPS.map((group) => ENDPOINTS.find((e) => e.group === group && e.fetch !== null)!.name);
    const answers = await page.evaluate(async ([names, image]) => {
      const out: Record<string, unknown> = {};
      for (const [i, name] of names.entries()) {
        out[name] = await window.sdapi!.call(name, {
          prompt: `a ${name} request`, width: 64, height: 64, init_image: image, image, url: image,
          messages: [{ role: 'user', content: 'hello' }], mock: i < 2 ? '[processing:1]' : '',
        });
      }
      return out;
    }, [picks, `${MOCK_API}/output/64x64/1-0.png`] as const);
    expect(Object.keys(answers)).toHaveLength(ENDPOINT_GROUPS.length);
    for (const [name, answer] of Object.entries(answers)) {
      const a = answer as Record<string, unknown> | unknown[];
      const ok = Array.isArray(a) || a.status === 'success';
      expect(ok, `${name}: ${JSON.stringify(a)}`).toBe(true);
      expect(JSON.stringify(a), `${name} must not echo the key`).not.toContain(MOCK_KEY);
    }
  });
});
