/**
 * The gallery: results generated from the form are kept (IndexedDB) with their request and meta
 * across reloads; each one downloads as a PNG carrying its A1111 `parameters` text, goes back into
 * the form as an init image or as settings, copies as a hosted-API request without the key, and
 * deletes for good. Tiny sizes keep the SwiftShader (webgpu project) run short.
 */
import { readFileSync } from 'node:fs';
import { decode } from 'fast-png';
import type { Locator, Page } from '@playwright/test';
import { expect, EXAMPLE_URL, fixturesPresent, MOCK_API, MOCK_KEY, openApp, test } from './fixtures.ts';
import { isErrorResponse, validateRequest } from '../../src/api/validate-request.ts';

const SIZE = 64;
const STEPS = 2;

const cards = (page: Page) => page.locator('#gallery-items > .gallery-item');
const card = (page: Page, text: string) => cards(page).filter({ hasText: text });
const action = (item: Locator, name: string) => item.getByRole('button', { name, exact: true });

/** Fills the form for a small job (text to image where the form has that mode) and generates. */
async function generateFromForm(page: Page, prompt: string, seed: number, samples = 1): Promise<void> {
  const before = await cards(page).count();
  if (await page.locator('#mode-text2img').count()) await page.click('#mode-text2img');
  else if (fixturesPresent) await page.fill('#init_image', EXAMPLE_URL);
  await page.evaluate(() => {
    const advanced = document.querySelector<HTMLDetailsElement>('details#advanced');
    if (advanced) advanced.open = true;
  });
  await page.fill('#prompt', prompt);
  await page.fill('#width', String(SIZE));
  await page.fill('#height', String(SIZE));
  await page.fill('#num_inference_steps', String(STEPS));
  await page.fill('#seed', String(seed));
  await page.fill('#samples', String(samples));
  await expect(page.locator('#generate')).toBeEnabled();
  await page.click('#generate');
  await expect(cards(page)).toHaveCount(before + 1, { timeout: 120_000 });
  await expect(page.locator('#generate')).toBeEnabled();
}

test('the gallery keeps results across reloads and offers download, init image, reuse, API request and delete', async ({ page, context, expectedBackend }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await openApp(page, expectedBackend, 'tiny-sd');
  await expect(page.locator('#gallery-empty')).toBeVisible();

  await test.step('two jobs from the form appear, newest first', async () => {
    await generateFromForm(page, 'a red fox in the snow', 42);
    await generateFromForm(page, 'a blue boat on a lake', 43, 2);
    await expect(cards(page).first()).toContainText('a blue boat on a lake');
    await expect(cards(page).nth(1)).toContainText('a red fox in the snow');
    await expect(page.locator('#gallery-storage')).toContainText('2 results, 3 images');
    await expect(cards(page).first().locator('.gallery-count')).toHaveText('2 images');
  });

  await test.step('after a reload both are still there with their meta', async () => {
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
    await expect(cards(page)).toHaveCount(2);
    const fox = card(page, 'a red fox in the snow');
    await expect(fox).toContainText('seed 42');
    await expect(fox).toContainText(`${SIZE}×${SIZE}`);
    await expect(fox).toContainText(`${STEPS} steps`);
    await expect(fox).toContainText('tiny-sd');
    const dims = await fox.locator('img').evaluate(async (img: HTMLImageElement) => {
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    });
    expect(dims).toEqual([SIZE, SIZE]);
    const storage = page.locator('#gallery-storage');
    await expect(storage).toContainText('in the gallery');
    expect(Number(await storage.getAttribute('data-bytes'))).toBeGreaterThan(0);
  });

  await test.step('open large shows the image, its details and its parameters', async () => {
    await card(page, 'a red fox in the snow').locator('.gallery-thumb').click();
    const dialog = page.locator('#gallery-lightbox');
    await expect(dialog).toBeVisible();
    await expect(dialog.locator('.gallery-details')).toContainText('a red fox in the snow');
    await expect(dialog.locator('#gallery-parameters')).toContainText(`Steps: ${STEPS}`);
    await expect(dialog.locator('#gallery-parameters')).toContainText('Seed: 42');
    const width = await dialog.locator('.gallery-large img').first().evaluate((img: HTMLImageElement) => img.getBoundingClientRect().width);
    expect(width).toBeGreaterThan(SIZE * 2);
    await page.screenshot({ path: `test-results/screenshots/gallery-lightbox-${expectedBackend}.png` });
    await page.keyboard.press('Escape');
    await expect(dialog).toBeHidden();
  });

  await test.step('download PNG carries the A1111 parameters in a tEXt chunk', async () => {
    const fox = card(page, 'a red fox in the snow');
    const [download] = await Promise.all([page.waitForEvent('download'), action(fox, 'Download PNG').click()]);
    expect(download.suggestedFilename()).toMatch(/^sd-\d+-42\.png$/);
    const png = decode(readFileSync(await download.path()), { checkCrc: true });
    expect([png.width, png.height]).toEqual([SIZE, SIZE]);
    const parameters = png.text.parameters;
    expect(parameters.split('\n')[0]).toBe('a red fox in the snow');
    expect(parameters).toMatch(new RegExp(`^Steps: ${STEPS}, .*Seed: 42, Size: ${SIZE}x${SIZE}, Model: tiny-sd$`, 'm'));
  });

  await test.step('each image of a multi-image result downloads with its own seed', async () => {
    await card(page, 'a blue boat on a lake').locator('.gallery-thumb').click();
    const dialog = page.locator('#gallery-lightbox');
    const figures = dialog.locator('.gallery-large figure');
    await expect(figures).toHaveCount(2);
    // The engine seeds image i with seed + i.
    await expect(figures.nth(1)).toContainText('seed 44');
    const [download] = await Promise.all([page.waitForEvent('download'), figures.nth(1).getByRole('button', { name: 'Download PNG' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^sd-\d+-44\.png$/);
    const parameters = decode(readFileSync(await download.path())).text.parameters;
    expect(parameters).toContain('a blue boat on a lake\n');
    expect(parameters).toContain('Seed: 44,');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toBeHidden();
  });

  await test.step('reuse settings puts prompt, seed and steps back into the form', async () => {
    await page.fill('#prompt', 'something else');
    await page.fill('#seed', '7');
    await page.fill('#num_inference_steps', '9');
    await action(card(page, 'a red fox in the snow'), 'Reuse settings').click();
    await expect(page.locator('#prompt')).toHaveValue('a red fox in the snow');
    await expect(page.locator('#seed')).toHaveValue('42');
    await expect(page.locator('#num_inference_steps')).toHaveValue(String(STEPS));
  });

  await test.step('copy as API request: JSON the validator accepts, no key, and a curl command', async () => {
    // A key in storage must never reach the copied request.
    await page.evaluate(() => localStorage.setItem('sdapi.key', 'sk-must-not-leak'));
    await action(card(page, 'a blue boat on a lake'), 'Copy as API request').click();
    const dialog = page.locator('#gallery-request');
    await expect(dialog).toBeVisible();
    await expect(dialog.locator('#gallery-request-status')).toContainText('on the clipboard');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const shown = await dialog.locator('#gallery-request-json').innerText();
    expect(JSON.parse(copied)).toEqual(JSON.parse(shown));
    const body = JSON.parse(copied) as Record<string, unknown>;
    expect(body.key).toBe('');
    expect(copied).not.toContain('sk-must-not-leak');
    // The form may send numbers or numeric strings (the API takes both).
    expect([body.prompt, String(body.seed), String(body.num_inference_steps)]).toEqual(['a blue boat on a lake', '43', String(STEPS)]);
    const validated = validateRequest('text2img', body, ['tiny-sd']);
    expect(isErrorResponse(validated), JSON.stringify(validated)).toBe(false);

    await dialog.getByRole('button', { name: 'Copy curl' }).click();
    await expect(dialog.locator('#gallery-request-status')).toContainText('curl command');
    const curl = await page.evaluate(() => navigator.clipboard.readText());
    expect(curl).toMatch(/^curl -X POST 'https:\/\/stablediffusionapi\.com\/api\/v3\/text2img'/);
    expect(curl).toContain("-H 'Content-Type: application/json'");
    expect(curl).toContain(`--data-raw '${JSON.stringify(body)}'`);
    await expect(dialog.locator('#gallery-request-curl')).toHaveText(curl);
    await page.screenshot({ path: `test-results/screenshots/gallery-request-${expectedBackend}.png` });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toBeHidden();
  });

  await test.step('use as init image puts it into the form, and an image-to-image job runs from it', async () => {
    await action(card(page, 'a red fox in the snow'), 'Use as init image').click();
    const preview = page.locator('#init-preview');
    await expect(preview).toBeVisible();
    expect(await preview.getAttribute('src')).toMatch(/^blob:/);
    const dims = await preview.evaluate(async (img: HTMLImageElement) => {
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    });
    expect(dims).toEqual([SIZE, SIZE]);
    await page.fill('#prompt', 'the fox at night');
    await page.fill('#num_inference_steps', String(STEPS));
    await page.fill('#strength', '0.5');
    await page.click('#generate');
    await expect(cards(page)).toHaveCount(3, { timeout: 120_000 });
    await expect(cards(page).first()).toContainText('the fox at night');
    await expect(cards(page).first()).toContainText('image to image');
  });

  await page.screenshot({ path: `test-results/screenshots/gallery-${expectedBackend}.png`, fullPage: true });
  await page.locator('#gallery-panel').screenshot({ path: `test-results/screenshots/gallery-panel-${expectedBackend}.png` });

  await test.step('delete removes it from the store, also after a reload', async () => {
    await action(card(page, 'a blue boat on a lake'), 'Delete').click();
    await expect(cards(page)).toHaveCount(2);
    await expect(card(page, 'a blue boat on a lake')).toHaveCount(0);
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
    await expect(cards(page)).toHaveCount(2);
    await expect(card(page, 'a blue boat on a lake')).toHaveCount(0);
    await expect(card(page, 'a red fox in the snow')).toHaveCount(1);
  });
});

test('a result from the hosted API (remote mode) is kept too, with its image bytes', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, { mode: 'remote', endpoint: MOCK_API, key: MOCK_KEY });
  await generateFromForm(page, 'a lighthouse from the hosted api', 11);
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
  const item = card(page, 'a lighthouse from the hosted api');
  await expect(item).toHaveCount(1);
  await expect(item).toContainText('seed 11');
  // The image is shown from the stored bytes (a blob: URL), not from the service's link.
  expect(await item.locator('img').getAttribute('src')).toMatch(/^blob:/);
  const [download] = await Promise.all([page.waitForEvent('download'), action(item, 'Download PNG').click()]);
  const png = decode(readFileSync(await download.path()));
  expect([png.width, png.height]).toEqual([SIZE, SIZE]);
  expect(png.text.parameters).toMatch(/^a lighthouse from the hosted api\n.*Seed: 11, Size: 64x64/);
  await action(item, 'Copy as API request').click();
  await expect(page.locator('#gallery-request-json')).not.toContainText(MOCK_KEY);
});

test('a long history shows its newest page first; records the page cannot read are skipped with a note', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  // 500 results written straight into the history's database, as a heavy user's would be, plus
  // records an older or foreign version could have left: a BigInt in the request, and no shape at all.
  await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('sd-history');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const canvas = new OffscreenCanvas(8, 8);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#3a6df0';
    ctx.fillRect(0, 0, 8, 8);
    const png = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    const tx = db.transaction('responses', 'readwrite');
    const store = tx.objectStore('responses');
    for (let id = 1; id <= 500; id++) {
      const meta = { prompt: `stored result ${id}`, seed: id, W: 8, H: 8, steps: 2, model: 'tiny-sd', runtime: 'local' };
      store.put({ id, response: { status: 'success', id, generationTime: 1, output: [`blob:gone/${id}`], meta }, request: { prompt: `stored result ${id}` }, createdAt: 1_700_000_000_000 + id, pngCount: 1 }, id);
      store.put([png], ['png', id]);
    }
    store.put({ id: 501, response: { status: 'success', id: 501, generationTime: 1, output: ['blob:x'], meta: { prompt: 'bigint' } }, request: { prompt: 'bigint', extra: 10n }, createdAt: 1_700_000_001_000, pngCount: 1 }, 501);
    store.put([png], ['png', 501]);
    store.put({ garbage: true }, 502);
    store.put({ id: 503, response: { status: 'success', id: 503, generationTime: 1, output: ['blob:y'], meta: { prompt: 'newest readable' } }, request: { prompt: 'newest readable' }, createdAt: 1_700_000_002_000, pngCount: 1 }, 503);
    store.put([png], ['png', 503]);
    await new Promise((resolve) => (tx.oncomplete = resolve));
    db.close();
  });
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
  await expect(cards(page).first()).toContainText('newest readable');
  // A page is 24 records; the one that cannot be shown counts among them.
  await expect(cards(page)).toHaveCount(23);
  await expect(cards(page).nth(1)).toContainText('stored result 500');
  await expect(page.locator('#gallery-status')).toContainText('2 stored results could not be read and are not shown (id 502, 501)');
  await expect(page.locator('#gallery-storage')).toContainText('23 results shown');
  await expect(page.locator('#gallery-empty')).toBeHidden();
  await page.locator('#gallery-panel').screenshot({ path: `test-results/screenshots/gallery-long-history-${expectedBackend}.png` });
  await page.getByRole('button', { name: 'Show older results' }).click();
  await expect(cards(page)).toHaveCount(47);
  await expect(cards(page).last()).toContainText('stored result 455');
  // What the page cannot read stays stored and untouched: nothing already stored is lost.
  const kept = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve) => {
      const open = indexedDB.open('sd-history');
      open.onsuccess = () => resolve(open.result);
    });
    const get = (key: IDBValidKey) => new Promise<unknown>((resolve) => {
      const r = db.transaction('responses').objectStore('responses').get(key);
      r.onsuccess = () => resolve(r.result);
    });
    return [Boolean(await get(501)), Boolean(await get(502))];
  });
  expect(kept).toEqual([true, true]);
});
