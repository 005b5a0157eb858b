/**
 * The rest of the hosted menu through window.sdapi: outpainting, super resolution (ESRGAN on the
 * bundled real weights), base64_crop and model_list locally on the project's backend, and one call
 * of every endpoint group remotely against the mock hosted API, processing answers polled.
 */
import { ENDPOINT_GROUPS, ENDPOINTS } from '../../src/api/endpoints.ts';
import { decodePng, expect, img2img, MOCK_API, MOCK_KEY, openApp, serve, test, TEST_IMAGE_URL, testImagePng } from './fixtures.ts';

test.describe('the image-editing calls, locally', () => {
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

  test('super_resolution upscales with ESRGAN, and base64_crop and model_list answer in the hosted shapes', async ({ page, expectedBackend }) => {
    await openApp(page, expectedBackend);
    await serve(page, TEST_IMAGE_URL, testImagePng(40, 30), 'image/png');
    const { response, pngs } = await img2img(page, { key: '', url: TEST_IMAGE_URL, scale: '2', face_enhance: false }, 'superResolution');
    expect(response.status, JSON.stringify(response.message)).toBe('success');
    expect(response.meta).toMatchObject({ W: 80, H: 60, scale: 2, model: 'esrgan-slim', input_W: 40, input_H: 30 });
    const up = decodePng(pngs[0]);
    expect([up.width, up.height]).toEqual([80, 60]);
    // Not a blank or constant image: the upscaled gradient still spans a range.
    expect(Math.max(...up.data) - Math.min(...up.data)).toBeGreaterThan(100);

    const refused = await page.evaluate(() => window.sdapi!.superResolution({ url: 'https://images.example.test/x.png', face_enhance: 'yes' }));
    expect(refused).toMatchObject({ status: 'error', message: { face_enhance: [expect.stringMatching(/does not run locally/)] } });

    const crop = await page.evaluate(async (url) => {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      let s = '';
      for (const b of bytes) s += String.fromCharCode(b);
      const answer = (await window.sdapi!.base64Crop({ key: '', image: `data:image/png;base64,${btoa(s)}`, crop: 'true' })) as Record<string, unknown>;
      const bitmap = await createImageBitmap(await (await fetch(String(answer.link))).blob());
      return { answer, size: [bitmap.width, bitmap.height] };
    }, TEST_IMAGE_URL);
    expect(crop.answer).toMatchObject({ status: 'success', messege: 'image uploaded', request_id: expect.any(Number) });
    expect(crop.size).toEqual([24, 24]); // the centred 30x30 square, down to a multiple of 8

    const list = (await page.evaluate(() => window.sdapi!.modelList({ key: '' }))) as Record<string, unknown>[];
    expect(list.find((m) => m.model_id === 'tiny-sd')).toMatchObject({ status: 'model_ready', model_category: 'stable_diffusion', runtime: 'local' });
    expect(list.some((m) => m.model_category === 'stable_diffusion_xl')).toBe(true);
  });
});

test.describe('every group of the hosted menu, remotely', () => {
  test('one call per group answers through window.sdapi against the mock hosted API, processing answers polled', async ({ page, expectedBackend }) => {
    test.skip(expectedBackend === 'webgpu', 'remote calls do not touch the backend: the wasm project covers them');
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
