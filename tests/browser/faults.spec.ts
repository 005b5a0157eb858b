/**
 * Faults a real user meets, injected into the real app: an init image URL that never answers or
 * answers slowly, a reload while a job runs, a failed model load, and a cached model whose stored
 * bytes were damaged. Each must end in a clear answer, and nothing queued or stored may be lost.
 * Backend-independent, so it runs in the wasm project only (playwright.config.ts).
 */
import type { Page } from '@playwright/test';
import { CLOSED_WHILE_RUNNING } from '../../src/api/local-client.ts';
import { expect, openApp, pngFromPage, sdapiCall, test } from './fixtures.ts';

const text2img = (overrides: Record<string, unknown> = {}) => ({
  prompt: 'a lighthouse at dusk', width: '64', height: '64', samples: '1', num_inference_steps: '2', guidance_scale: 7.5, seed: 3, ...overrides,
});

const waitReady = (page: Page) => page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 120_000 });

test('an init image URL that never answers is cancelled at once, a slow one still works, and the jobs behind run', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  const png = await pngFromPage(page, 64, 64, '#c84');
  // Never answered: the route is left pending.
  await page.route('https://images.test/never.png', () => undefined);
  await page.route('https://images.test/slow.png', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await route.fulfill({ status: 200, body: png, contentType: 'image/png', headers: { 'Access-Control-Allow-Origin': '*' } });
  }).catch(() => undefined);
  const stuck = await sdapiCall(page, 'img2img', text2img({ init_image: 'https://images.test/never.png', instant_response: 'yes' }));
  const behind = await sdapiCall(page, 'text2img', text2img({ instant_response: 'yes' }));
  expect([stuck.status, behind.status]).toEqual(['processing', 'processing']);
  expect((await sdapiCall(page, 'systemLoad')).queue_num).toBe(2);
  expect(await page.evaluate((id) => window.sdapi!.cancel(id), stuck.id as number)).toBe(true);
  await expect.poll(async () => (await sdapiCall(page, 'fetch', stuck.id)).status, { timeout: 10_000 }).toBe('failed');
  expect((await sdapiCall(page, 'fetch', stuck.id)).message).toBe('The request was cancelled.');
  await expect.poll(async () => (await sdapiCall(page, 'fetch', behind.id)).status, { timeout: 60_000 }).toBe('success');
  expect((await sdapiCall(page, 'systemLoad')).queue_num).toBe(0);

  const slow = await sdapiCall(page, 'img2img', text2img({ init_image: 'https://images.test/slow.png' }));
  expect(slow.status, JSON.stringify(slow.message)).toBe('success');
});

test('a job running when the page reloads answers failed with the reason, never "not found"', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  const long = await sdapiCall(page, 'text2img', text2img({ width: '512', height: '512', num_inference_steps: '50', instant_response: 'yes' }));
  const queued = await sdapiCall(page, 'text2img', text2img({ instant_response: 'yes' }));
  expect(long.status).toBe('processing');
  await page.reload();
  await waitReady(page);
  for (const id of [long.id, queued.id]) expect(await sdapiCall(page, 'fetch', id)).toEqual({ status: 'failed', id, message: CLOSED_WHILE_RUNNING, output: '' });
  expect((await sdapiCall(page, 'fetch', 987_654)).message).toBe('No request with id 987654 was found.');
});

test('a failed model load does not break the model that was loaded, for the API or the form', async ({ page, expectedBackend }) => {
  // catalogue models download from a hub that cannot be reached
  await page.addInitScript(() => localStorage.setItem('sdapi.hubMirror', 'http://hub.invalid'));
  await openApp(page, expectedBackend, { model: 'tiny-sd', mode: 'local' });
  const failed = await sdapiCall(page, 'text2img', text2img({ model_id: 'sd-turbo' }));
  expect(failed.status).toBe('error');
  expect(String(failed.message)).toMatch(/sd-turbo/);
  const after = await sdapiCall(page, 'text2img', text2img({ model_id: 'tiny-sd' }));
  expect(after.status, JSON.stringify(after.message)).toBe('success');
  const plain = await sdapiCall(page, 'text2img', text2img());
  expect(plain.status, JSON.stringify(plain.message)).toBe('success');
});

test('a damaged chunk of a cached model: only that file is fetched again, the page starts, and generation works', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  expect((await sdapiCall(page, 'text2img', text2img())).status).toBe('success');
  // Storage goes wrong under the app: the UNet's one chunk gets bytes that are no protobuf.
  await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('sd-models');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const store = db.transaction('files', 'readwrite').objectStore('files');
    const key = ['chunk', 'tiny-sd', 'unet/model.onnx', 0];
    const old = await new Promise<ArrayBuffer>((resolve) => {
      const r = store.get(key);
      r.onsuccess = () => resolve(r.result as ArrayBuffer);
    });
    await new Promise((resolve) => {
      const r = store.put(new Uint8Array(old.byteLength).fill(0x0e).buffer, key);
      r.onsuccess = resolve;
    });
    db.close();
  });
  const fetched: string[] = [];
  page.context().on('request', (r) => {
    if (r.url().includes('/models/tiny-sd/')) fetched.push(new URL(r.url()).pathname.replace(/^.*\/models\/tiny-sd\//, ''));
  });
  await page.reload();
  await waitReady(page);
  await expect(page.locator('#model-status')).toContainText('tiny-sd is ready');
  expect(fetched.filter((p) => p.endsWith('.onnx'))).toEqual(['unet/model.onnx']);
  const r = await sdapiCall(page, 'text2img', text2img());
  expect(r.status, JSON.stringify(r.message)).toBe('success');
});
