/**
 * The form's image-editing modes and the gallery's Upscale action, in the built app: Upscale
 * (super_resolution, ESRGAN 2×) on a served 64×48 PNG, the gallery's Upscale on a text2img result,
 * and Outpaint extending a 64×64 image to 96×64 with the image's centre kept pixel for pixel. Tiny
 * sizes and 2 steps keep it quick; it runs in the wasm project only (playwright.config.ts).
 */
import { mkdirSync } from 'node:fs';
import type { Locator, Page } from '@playwright/test';
import { bytesOf, decodePng, expect, openApp, serve, test, testImagePng } from './fixtures.ts';

interface Call {
  method: string;
  request: Record<string, unknown>;
  response: { status: string; output?: string[] | string; meta?: Record<string, unknown>; message?: unknown };
}

declare global {
  interface Window {
    __editCalls?: Call[];
    __jobStatuses?: string[];
  }
}

const SHOTS = 'test-results/screens';
mkdirSync(SHOTS, { recursive: true });

const SMALL_URL = 'https://images.example.test/small-64x48.png';
const SQUARE_URL = 'https://images.example.test/square-64x64.png';

const cards = (page: Page) => page.locator('#gallery-items > .gallery-item');
const action = (item: Locator, name: string | RegExp) => item.getByRole('button', { name });
const calls = (page: Page) => page.evaluate(() => window.__editCalls ?? []);

/** Records what the page sends through window.sdapi, and every text the job status line shows. */
async function record(page: Page): Promise<void> {
  await page.evaluate(() => {
    const api = window.sdapi as unknown as Record<string, (r: unknown) => Promise<unknown>>;
    window.__editCalls = [];
    for (const name of ['text2img', 'outpaint', 'superResolution']) {
      const original = api[name].bind(api);
      api[name] = async (request: unknown) => {
        const response = await original(request);
        window.__editCalls!.push({ method: name, request: request as Record<string, unknown>, response: response as Call['response'] });
        return response;
      };
    }
    window.__jobStatuses = [];
    const status = document.getElementById('job-status')!;
    new MutationObserver(() => window.__jobStatuses!.push(status.textContent ?? '')).observe(status, { childList: true, characterData: true, subtree: true });
  });
}

/** Waits for the n-th recorded call and checks it succeeded. */
async function nthCall(page: Page, n: number): Promise<Call> {
  await expect.poll(async () => (await calls(page)).length, { timeout: 120_000 }).toBeGreaterThanOrEqual(n);
  const call = (await calls(page))[n - 1];
  expect(call.response.status, JSON.stringify(call.response.message)).toBe('success');
  return call;
}

const naturalSize = (img: Locator) => img.evaluate((i: HTMLImageElement) => i.decode().then(() => [i.naturalWidth, i.naturalHeight]));
const outputUrl = (call: Call) => (Array.isArray(call.response.output) ? call.response.output[0] : call.response.output)!;

test.describe('outpaint and upscale', () => {
  test.describe.configure({ mode: 'serial' });
  let page: Page;
  test.beforeAll(async ({ browser, expectedBackend }) => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await serve(page, SMALL_URL, testImagePng(64, 48), 'image/png');
    await serve(page, SQUARE_URL, testImagePng(64, 64), 'image/png');
    await openApp(page, expectedBackend, 'tiny-sd');
    await record(page);
  });
  test.afterAll(async () => page?.context().close());

  test('Upscale mode: a 64×48 PNG becomes 128×96, in the results and the gallery, with tile progress', async () => {
    await expect(page.locator('[role="tablist"] [role="tab"]')).toHaveCount(5);
    await page.click('#mode-upscale');
    await expect(page.locator('#mode-upscale')).toHaveAttribute('aria-selected', 'true');
    await expect(page.locator('#form-fields')).toHaveAttribute('aria-labelledby', 'mode-upscale');
    // No prompt, size or steps: an upscale takes an image and a factor.
    for (const id of ['#prompt', '#width', '#num_inference_steps', '#advanced', '#mask-editor']) await expect(page.locator(id)).toBeHidden();
    await expect(page.locator('#init-fieldset legend')).toHaveText('Image to upscale');
    await page.fill('#init_image', SMALL_URL);
    await expect(page.locator('#init-caption')).toContainText('64×48');
    await page.getByRole('combobox', { name: /^Scale/ }).selectOption('2');
    await expect(page.locator('#scale-result')).toHaveText('64×48 → 128×96');
    const form = await page.evaluate(() => window.sdForm!.read());
    expect(form).toEqual({
      endpoint: 'upscale',
      request: { key: '', url: SMALL_URL, scale: 2, face_enhance: 'no', base64: 'no', webhook: null, track_id: null },
    });

    const before = await cards(page).count();
    await page.click('#generate');
    const call = await nthCall(page, 1);
    expect(call.method).toBe('superResolution');
    expect(call.request).not.toHaveProperty('model_id');
    expect(call.response.meta).toMatchObject({ W: 128, H: 96, scale: 2 });
    expect(decodePng(await bytesOf(page, outputUrl(call)))).toMatchObject({ width: 128, height: 96 });
    await expect(page.locator('#generate')).toBeEnabled();
    // The engine reports each tile as a generation reports its steps.
    expect(await page.evaluate(() => window.__jobStatuses)).toEqual(expect.arrayContaining([expect.stringMatching(/^Upscaling: tile \d+ of \d+$/)]));
    await expect(page.locator('#job-status')).toContainText(/^Done in [\d.]+s on this device$/);

    const result = page.locator('#results figure').first();
    expect(await naturalSize(result.locator('img'))).toEqual([128, 96]);
    await expect(result.locator('img')).toHaveAttribute('alt', 'Upscaled 2×');
    await expect(result.locator('figcaption')).toContainText('upscaled 2× · 128×96');

    await expect(cards(page)).toHaveCount(before + 1);
    const item = cards(page).first();
    expect(await naturalSize(item.locator('img'))).toEqual([128, 96]);
    await expect(item).toContainText('Upscaled 2×');
    await expect(item).toContainText('upscale 2× from 64×48 · 128×96');
    await page.screenshot({ path: `${SHOTS}/mode-upscale.png`, fullPage: true });

    // Copy as API request: the hosted super_resolution call, key empty.
    await action(item, 'Copy as API request').click();
    const dialog = page.locator('#gallery-request');
    await expect(dialog).toBeVisible();
    await expect(dialog.locator('code')).toHaveText('https://stablediffusionapi.com/api/v3/super_resolution');
    const body = JSON.parse(await dialog.locator('#gallery-request-json').innerText()) as Record<string, unknown>;
    expect(body).toMatchObject({ key: '', url: SMALL_URL, scale: 2, face_enhance: 'no' });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toBeHidden();
  });

  test('the gallery\'s Upscale on a text2img result adds a 2× result', async () => {
    await page.click('#mode-text2img');
    await page.fill('#prompt', 'a small red house');
    await page.fill('#width', '64');
    await page.fill('#height', '64');
    await page.fill('#num_inference_steps', '2');
    await page.fill('#samples', '1');
    await page.fill('#seed', '5');
    const before = await cards(page).count();
    await page.click('#generate');
    const generated = await nthCall(page, 2);
    expect(generated.method).toBe('text2img');
    await expect(cards(page)).toHaveCount(before + 1);
    await expect(page.locator('#generate')).toBeEnabled();
    const sourceId = await cards(page).first().getAttribute('data-id');
    // By id: the upscale's card will come first.
    const source = page.locator(`#gallery-items > .gallery-item[data-id="${sourceId}"]`);
    await expect(source).toContainText('a small red house');

    const upscale = action(source, 'Upscale 2×');
    await expect(upscale).toHaveAttribute('title', /2 times/);
    // What the button says while it runs (too quick to catch by polling).
    await upscale.evaluate((button) => {
      const seen: string[] = [];
      (window as unknown as { __upscaleButton: string[] }).__upscaleButton = seen;
      new MutationObserver(() => seen.push(`${button.textContent} ${button.getAttribute('aria-disabled') ?? ''}`.trim()))
        .observe(button, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    // Keyboard: the action is a plain button in the card's group.
    await upscale.focus();
    await page.keyboard.press('Enter');
    const call = await nthCall(page, 3);
    expect(call.method).toBe('superResolution');
    expect(call.request).toMatchObject({ scale: 2, face_enhance: 'no' });
    expect(String(call.request.init_image)).toMatch(/^data:image\/png;base64,/);
    expect(call.response.meta).toMatchObject({ W: 128, H: 128, scale: 2, input_W: 64, input_H: 64 });

    await expect(cards(page)).toHaveCount(before + 2);
    const upscaled = cards(page).first();
    expect(await upscaled.getAttribute('data-id')).not.toBe(sourceId);
    expect(await naturalSize(upscaled.locator('img'))).toEqual([128, 128]);
    await expect(upscaled).toContainText('upscale 2× from 64×64 · 128×128');
    await expect(page.locator('#gallery-status')).toContainText(`Result ${sourceId} upscaled 2× to 128×128`);
    // The source's button is back, and still holds the focus.
    await expect(upscale).toHaveText('Upscale 2×');
    await expect(upscale).not.toHaveAttribute('aria-disabled', 'true');
    await expect(upscale).toBeFocused();
    expect(await page.evaluate(() => (window as unknown as { __upscaleButton: string[] }).__upscaleButton)).toContain('Upscaling… true');
    await page.locator('#gallery-panel').screenshot({ path: `${SHOTS}/gallery-upscale.png` });
  });

  test('Outpaint mode extends a 64×64 image to 96×64 and keeps its centre pixel for pixel', async () => {
    await page.click('#mode-outpaint');
    await expect(page.locator('#init-fieldset legend')).toHaveText('Image to extend');
    for (const id of ['#prompt', '#width', '#overlap_width', '#outpaint-hint']) await expect(page.locator(id)).toBeVisible();
    for (const id of ['#strength', '#samples', '#scale', '#mask-editor']) await expect(page.locator(id)).toBeHidden();
    await expect(page.locator('#overlap_width')).toHaveValue('32');
    await page.fill('#init_image', SQUARE_URL);
    await expect(page.locator('#init-caption')).toContainText('64×64');
    await page.fill('#prompt', 'a meadow');
    await page.fill('#width', '64');
    await page.fill('#height', '64');
    // Nothing to extend: said before anything is queued.
    await page.click('#generate');
    await expect(page.locator('#form-message')).toContainText('already fills a 64×64 canvas');

    await page.fill('#width', '96');
    // An 8 px band on each exposed side: the 48 columns between come back exactly.
    await page.fill('#overlap_width', '8');
    await page.fill('#num_inference_steps', '2');
    await page.fill('#seed', '3');
    const { endpoint, request } = await page.evaluate(() => window.sdForm!.read());
    expect(endpoint).toBe('outpaint');
    expect(request).toMatchObject({ key: '', prompt: 'a meadow', image: SQUARE_URL, width: '96', height: '64', overlap_width: '8', num_inference_steps: '2', seed: 3 });
    for (const k of ['init_image', 'strength', 'samples', 'mask_image']) expect(request).not.toHaveProperty(k);

    const before = await cards(page).count();
    await page.click('#generate');
    const call = await nthCall(page, 4);
    expect(call.method).toBe('outpaint');
    expect(call.response.meta).toMatchObject({ W: 96, H: 64, overlap_width: 8 });
    const out = decodePng(await bytesOf(page, outputUrl(call)));
    expect([out.width, out.height]).toEqual([96, 64]);
    const input = decodePng(testImagePng(64, 64));
    const x0 = (96 - 64) / 2;
    let differing = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = x0 + 8; x < x0 + 64 - 8; x++) {
        for (let c = 0; c < 3; c++) {
          if (out.data[(y * out.width + x) * out.channels + c] !== input.data[(y * input.width + (x - x0)) * input.channels + c]) differing++;
        }
      }
    }
    expect(differing, 'channel values of the centre columns that differ from the input').toBe(0);

    await expect(page.locator('#generate')).toBeEnabled();
    expect(await naturalSize(page.locator('#results figure img').first())).toEqual([96, 64]);
    await expect(cards(page)).toHaveCount(before + 1);
    const item = cards(page).first();
    await expect(item).toContainText('a meadow');
    await expect(item).toContainText('outpaint · seed 3 · 96×64');
    await page.screenshot({ path: `${SHOTS}/mode-outpaint.png`, fullPage: true });

    await action(item, 'Copy as API request').click();
    const dialog = page.locator('#gallery-request');
    await expect(dialog.locator('code')).toHaveText('https://stablediffusionapi.com/api/v6/image_editing/outpaint');
    expect(JSON.parse(await dialog.locator('#gallery-request-json').innerText())).toMatchObject({ key: '', image: SQUARE_URL, width: '96', overlap_width: '8' });
    await dialog.getByRole('button', { name: 'Close' }).click();

    // Reuse settings brings the outpaint back into its own mode.
    await page.click('#mode-text2img');
    await action(item, 'Reuse settings').click();
    await expect(page.locator('#mode-outpaint')).toHaveAttribute('aria-selected', 'true');
    await expect(page.locator('#overlap_width')).toHaveValue('8');
    await expect(page.locator('#width')).toHaveValue('96');
    await expect(page.locator('#init_image')).toHaveValue(SQUARE_URL);
  });

  test('on a 360 px phone the five tabs wrap, the new fields fit, and every control has a label', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    try {
      for (const mode of ['outpaint', 'upscale'] as const) {
        await page.click(`#mode-${mode}`);
        const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
        expect(scroll, `${mode}: horizontal scroll`).toBeLessThanOrEqual(client);
        const unlabelled = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('#generate-form input, #generate-form select, #generate-form textarea, #generate-form button')]
          .filter((el) => !el.hidden && el.getClientRects().length > 0)
          .filter((el) => !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent?.trim())))
          .map((el) => el.id || el.outerHTML.slice(0, 60)));
        expect(unlabelled, mode).toEqual([]);
        await page.locator('#generate-form').screenshot({ path: `${SHOTS}/form-${mode}-360.png` });
      }
      // The tabs keep the ARIA pattern across the wrap: arrows move along all five, End reaches Upscale.
      await page.focus('#mode-upscale');
      await page.keyboard.press('ArrowRight');
      await expect(page.locator('#mode-text2img')).toBeFocused();
      await page.keyboard.press('ArrowLeft');
      await page.keyboard.press('ArrowLeft');
      await expect(page.locator('#mode-outpaint')).toHaveAttribute('aria-selected', 'true');
      await page.keyboard.press('End');
      await expect(page.locator('#mode-upscale')).toBeFocused();
    } finally {
      await page.setViewportSize({ width: 1200, height: 1000 });
    }
  });
});
