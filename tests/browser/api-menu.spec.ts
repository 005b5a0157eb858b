/**
 * The image-editing calls through window.sdapi on the project's backend: super resolution (ESRGAN on
 * the bundled real weights, on WebGPU and on WASM), base64_crop and model_list. Outpainting and the
 * remote menu are in api-menu-extras.spec.ts.
 */
import { decodePng, expect, img2img, openApp, serve, test, TEST_IMAGE_URL, testImagePng } from './fixtures.ts';

test.describe('the image-editing calls, locally', () => {
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
