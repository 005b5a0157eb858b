/**
 * img2img end to end in the built app: the real worker, onnxruntime-web on the project's backend
 * (WebGPU through SwiftShader, or WASM), the tiny generated models served by the app itself.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from '@playwright/test';
import { decode } from 'fast-png';
import {
  EXAMPLE_IMAGE, EXAMPLE_REQUEST, EXAMPLE_URL, FIXTURES, FIXTURES_MISSING, decodePng, expect, fixturesPresent, img2img,
  meanAbsDiff, openApp, serve, test, type Pixels,
} from './fixtures.ts';

const MASK_URL = 'https://example.test/mask.png';
const small = (overrides: Record<string, unknown>) => ({
  ...EXAMPLE_REQUEST, width: '128', height: '128', num_inference_steps: '10', enhance_prompt: 'no', seed: 1234, ...overrides,
});

/** 8x8 block average of an RGB(A) image, upsampled back: what the analytic tiny VAE reconstructs. */
function blockAverage(img: Pixels): Pixels {
  const out = new Uint8Array(img.width * img.height * 3);
  for (let by = 0; by < img.height; by += 8) {
    for (let bx = 0; bx < img.width; bx += 8) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) s += img.data[(y * img.width + x) * img.channels + c];
        // the VAE works in [-1, 1]: average there, then back to bytes the way the pipeline rounds
        const v = Math.round(Math.min(1, Math.max(0, (s / 64 / 127.5 - 1) / 2 + 0.5)) * 255);
        for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) out[(y * img.width + x) * 3 + c] = v;
      }
    }
  }
  return { width: img.width, height: img.height, channels: 3, data: out };
}

async function newAppPage(browser: Browser, backend: 'webgpu' | 'wasm', model: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page ${backend}] ${m.text()}`); });
  await openApp(page, backend, model);
  return page;
}

test.describe('img2img on tiny-sd', () => {
  test.describe.configure({ mode: 'serial' });
  let page: Page;
  test.beforeAll(async ({ browser, expectedBackend }) => {
    // Skipped only when ../shared/fixtures is absent: the test needs the API's example init image.
    test.skip(!fixturesPresent, FIXTURES_MISSING);
    page = await newAppPage(browser, expectedBackend, 'tiny-sd');
  });
  test.afterAll(async () => page?.close());

  test('the seed document example request succeeds with a random seed reported', async ({ expectedBackend }, info) => {
    // 21 guided steps at 512x512 plus the VAE both ways: about two minutes on SwiftShader's emulated GPU, which
    // shares the machine's two cores with everything else running
    test.setTimeout(480_000);
    const { response, pngs } = await img2img(page, EXAMPLE_REQUEST);
    expect(response.status, JSON.stringify(response.message)).toBe('success');
    expect(response.output).toHaveLength(1);
    expect(typeof response.id).toBe('number');
    const img = decodePng(pngs[0]);
    expect([img.width, img.height]).toEqual([512, 512]);
    const meta = response.meta!;
    for (const key of ['H', 'W', 'guidance_scale', 'model', 'n_samples', 'negative_prompt', 'prompt', 'seed', 'steps', 'safety_checker', 'vae', 'file_prefix', 'strength', 'init_image']) {
      expect(meta, `meta.${key}`).toHaveProperty(key);
    }
    expect(meta.W).toBe(512);
    expect(meta.H).toBe(512);
    expect(meta.model).toBe('tiny-sd');
    expect(meta.init_image).toBe(EXAMPLE_URL);
    expect(Number.isInteger(meta.seed)).toBe(true);
    expect(String(meta.prompt)).toMatch(/^a cat sitting on a bench, /); // enhance_prompt: "yes"
    expect(meta.backend).toBe(expectedBackend);
    // Not a blank image: the pixels vary.
    const values = new Set<number>();
    for (let i = 0; i < img.data.length; i += 97) values.add(img.data[i]);
    expect(values.size).toBeGreaterThan(20);
    await info.attach('example-output.png', { body: pngs[0], contentType: 'image/png' });
  });

  test('the same seed gives identical pixels', async () => {
    const a = await img2img(page, small({ seed: 777 }));
    const b = await img2img(page, small({ seed: 777 }));
    expect(a.response.status).toBe('success');
    expect(b.response.meta!.seed).toBe(777);
    expect(Buffer.compare(decodePngData(a.pngs[0]), decodePngData(b.pngs[0]))).toBe(0);
  });

  test('a different seed or prompt changes the image', async () => {
    const base = decodePng((await img2img(page, small({ seed: 1 }))).pngs[0]);
    const otherSeed = decodePng((await img2img(page, small({ seed: 2 }))).pngs[0]);
    const otherPrompt = decodePng((await img2img(page, small({ seed: 1, prompt: 'a red mountain painting' }))).pngs[0]);
    expect(meanAbsDiff(base, otherSeed)).toBeGreaterThan(1);
    expect(meanAbsDiff(base, otherPrompt)).toBeGreaterThan(1);
  });

  test('bad requests come back in the error shape, field by field', async () => {
    await serve(page, 'https://example.test/not-an-image', '<html>nope</html>', 'text/html');
    const cases: [Record<string, unknown>, string][] = [
      [{ width: '4096' }, 'width'],
      [{ samples: '9' }, 'samples'],
      [{ strength: 2 }, 'strength'],
      [{ prompt: undefined }, 'prompt'],
      [{ init_image: 'https://example.test/not-an-image' }, 'init_image'],
      [{ init_image: 'https://unreachable.invalid/x.png' }, 'init_image'],
    ];
    for (const [overrides, field] of cases) {
      const request = small(overrides);
      if ('prompt' in overrides) delete (request as Record<string, unknown>).prompt;
      const { response } = await img2img(page, request);
      expect(response.status, JSON.stringify(overrides)).toBe('error');
      const message = response.message as Record<string, string[]>;
      expect(Object.keys(message), JSON.stringify(response.message)).toEqual([field]);
      expect(message[field][0].length).toBeGreaterThan(10);
    }
    // The engine is still usable afterwards.
    expect((await img2img(page, small({}))).response.status).toBe('success');
  });
});

function decodePngData(png: Buffer): Buffer {
  return Buffer.from(decode(png).data as Uint8Array);
}

test.describe('img2img on the analytic model', () => {
  test.describe.configure({ mode: 'serial' });
  let page: Page;
  test.beforeAll(async ({ browser, expectedBackend }) => {
    // Skipped only when ../shared/fixtures is absent: the test needs the API's example init image.
    test.skip(!fixturesPresent, FIXTURES_MISSING);
    page = await newAppPage(browser, expectedBackend, 'tiny-sd-analytic');
    await serve(page, MASK_URL, readFileSync(resolve(FIXTURES, 'overture-creations-5sI6fQgYIuo_mask.png')), 'image/png');
  });
  test.afterAll(async () => page?.close());

  test('strength 0.05 returns the block-averaged init image; strength 1.0 is independent of it', async ({}, info) => {
    const request = { ...EXAMPLE_REQUEST, enhance_prompt: 'no', seed: 42 };
    const expected = blockAverage(decodePng(readFileSync(EXAMPLE_IMAGE)));
    const low = await img2img(page, { ...request, strength: 0.05 });
    expect(low.response.status, JSON.stringify(low.response.message)).toBe('success');
    const lowImg = decodePng(low.pngs[0]);
    expect(meanAbsDiff(lowImg, expected)).toBeLessThan(6);

    const lowMask = decodePng((await img2img(page, { ...request, strength: 0.05, init_image: MASK_URL })).pngs[0]);
    const high = decodePng((await img2img(page, { ...request, strength: 1.0 })).pngs[0]);
    const highMask = decodePng((await img2img(page, { ...request, strength: 1.0, init_image: MASK_URL })).pngs[0]);
    const apartAtLow = meanAbsDiff(lowImg, lowMask);
    const apartAtHigh = meanAbsDiff(high, highMask);
    expect(apartAtLow).toBeGreaterThan(30);
    // At strength 1 the init image weighs about sqrt(alpha_bar(999)) ~ 0.07 against the noise, as in diffusers.
    expect(apartAtHigh).toBeLessThan(0.15 * apartAtLow);
    expect(meanAbsDiff(high, expected)).toBeGreaterThan(3 * meanAbsDiff(lowImg, expected));
    await info.attach('analytic-strength-0.05.png', { body: low.pngs[0], contentType: 'image/png' });
  });
});

test('a reload loads the weights from IndexedDB without one weight request', async ({ page, expectedBackend }) => {
  // Skipped only when ../shared/fixtures is absent: the test needs the API's example init image.
  test.skip(!fixturesPresent, FIXTURES_MISSING);
  await openApp(page, expectedBackend, 'tiny-sd');
  const weightRequests: string[] = [];
  page.on('request', (r) => { if (/\/models\/.*\.onnx/.test(r.url())) weightRequests.push(r.url()); });
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 120_000 });
  expect(weightRequests).toEqual([]);
  const { response } = await img2img(page, small({}));
  expect(response.status).toBe('success');
});

test('the page runs img2img from its form and shows the result', async ({ page, expectedBackend }, info) => {
  // Skipped only when ../shared/fixtures is absent: the test needs the API's example init image.
  test.skip(!fixturesPresent, FIXTURES_MISSING);
  await openApp(page, expectedBackend, 'tiny-sd');
  await page.fill('#init_image', EXAMPLE_URL);
  await page.fill('#width', '256');
  await page.fill('#height', '256');
  await page.fill('#num_inference_steps', '8');
  await page.fill('#seed', '5');
  await page.click('#generate');
  await expect(page.locator('#results img')).toHaveCount(1, { timeout: 120_000 });
  await expect(page.locator('#job-status')).toContainText('Done in');
  // img2img with the model's Euler scheduler runs the GPU-resident loop on WebGPU, and the page says so
  if (expectedBackend === 'webgpu') await expect(page.locator('#job-status')).toContainText('denoised on the GPU');
  else await expect(page.locator('#job-status')).not.toContainText('on the GPU');
  const dims = await page.locator('#results img').evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]);
  expect(dims).toEqual([256, 256]);
  const shot = await page.screenshot({ fullPage: true });
  await info.attach(`page-${expectedBackend}.png`, { body: shot, contentType: 'image/png' });
  await page.screenshot({ path: `test-results/screenshots/img2img-${expectedBackend}.png`, fullPage: true });
});
