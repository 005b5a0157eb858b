/**
 * Model downloads in the real app against a stand-in Hugging Face hub on loopback (302 to a CDN,
 * X-Linked-* headers, Range): progress, a cut connection resumed with Range, a reload midway, a
 * corrupted byte, a quota the browser is made to report, delete, and generating with the result.
 */
import type { Page } from '@playwright/test';
import { MOCK_HUB, expect, img2img, openApp, test } from './fixtures.ts';

const repoUrl = (repo: string) => `${MOCK_HUB}/${repo}/resolve/main/`;
const CHUNK = 8 * 1024 * 1024;

interface HubRequest { method: string; kind: string; file: string | null; range: string | null; status: number }

async function hub(path: string, init?: RequestInit): Promise<unknown> {
  const r = await fetch(`${MOCK_HUB}${path}`, init);
  return r.headers.get('content-type')?.includes('json') ? r.json() : null;
}
const setFault = (body: Record<string, unknown>) => hub('/_fault', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const hubRequests = async () => (await hub('/_requests')) as HubRequest[];

test.beforeEach(async () => {
  await hub('/_fault', { method: 'DELETE' });
  await hub('/_requests', { method: 'DELETE' });
});

/** Adds the repository by URL in the model panel and returns the model id it got. */
async function addModel(page: Page, repo: string): Promise<string> {
  await page.fill('#model-url', repoUrl(repo));
  await page.click('#model-add');
  await expect(page.locator('#model')).toHaveValue(`custom:${repoUrl(repo)}`);
  return `custom:${repoUrl(repo)}`;
}

async function download(page: Page): Promise<void> {
  await expect(page.locator('#model-download')).toBeEnabled();
  await page.click('#model-download');
}

test('a complete download shows bytes, speed and time left, verifies, and the model generates', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  const id = await addModel(page, 'test/tiny-sd-big');
  await setFault({ path: 'unet/model.onnx_data', bytesPerSecond: 12 * 1024 * 1024 });
  const seen = new Set<string>();
  const watcher = setInterval(() => void page.locator('#model-status').textContent().then((t) => t && seen.add(t)).catch(() => undefined), 100);
  await download(page);
  await expect(page.locator('#model-status')).toContainText('downloaded and verified', { timeout: 120_000 });
  clearInterval(watcher);
  const progress = [...seen].filter((t) => / of .*\/s/.test(t));
  expect(progress.length, [...seen].join('\n')).toBeGreaterThan(0);
  expect(progress.some((t) => /left/.test(t))).toBe(true);
  await expect(page.locator('#model-info')).toHaveAttribute('data-cached', 'complete');
  const { response } = await img2img(page, { prompt: 'a cat', width: 64, height: 64, num_inference_steps: 2, seed: 1, model_id: id }, 'text2img');
  expect(response.status, JSON.stringify(response.message)).toBe('success');
  expect(response.meta!.model).toBe(id);
});

test('a connection cut midway resumes with a Range request and the file verifies', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  await addModel(page, 'test/tiny-sd-big');
  await setFault({ path: 'unet/model.onnx_data', cutAfter: CHUNK + CHUNK / 4 });
  await download(page);
  await expect(page.locator('#model-status')).toContainText('downloaded and verified', { timeout: 120_000 });
  const ranges = (await hubRequests()).filter((r) => r.file?.endsWith('unet/model.onnx_data') && r.range);
  expect(ranges.map((r) => r.range)).toContain(`bytes=${CHUNK}-`);
});

test('a reload midway resumes from the stored chunks', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  const id = await addModel(page, 'test/tiny-sd-big');
  await setFault({ path: 'unet/model.onnx_data', bytesPerSecond: 4 * 1024 * 1024 });
  await download(page);
  await expect(page.locator('#model-status')).toContainText(/(9|1\d)\.\d MB of/, { timeout: 60_000 });
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 120_000 });
  await page.selectOption('#model', id); // the added model is remembered across the reload
  await expect(page.locator('#model-info')).toHaveAttribute('data-cached', 'partial');
  await expect(page.locator('#model-download')).toHaveText('Resume download');
  await hub('/_fault', { method: 'DELETE' });
  await hub('/_requests', { method: 'DELETE' });
  await download(page);
  await expect(page.locator('#model-status')).toContainText('downloaded and verified', { timeout: 120_000 });
  const resumed = (await hubRequests()).filter((r) => r.file?.endsWith('unet/model.onnx_data') && r.method === 'GET');
  expect(resumed[0]?.range, JSON.stringify(resumed)).toMatch(new RegExp(`^bytes=(${CHUNK}|${2 * CHUNK})-$`));
});

test('a corrupted byte is detected, the file discarded, and nothing corrupt is used', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  const id = await addModel(page, 'test/tiny-sd');
  await setFault({ path: 'unet/model.onnx', corruptAt: 1000 });
  await download(page);
  await expect(page.locator('#model-status')).toContainText('unet/model.onnx', { timeout: 60_000 });
  await expect(page.locator('#model-status')).toHaveClass(/error/);
  await expect(page.locator('#model-info')).not.toHaveAttribute('data-cached', 'complete');
  // A request on it fails cleanly while the hub keeps sending the bad byte...
  const bad = await img2img(page, { prompt: 'a cat', width: 64, height: 64, num_inference_steps: 2, model_id: id }, 'text2img');
  expect(bad.response.status).toBe('error');
  expect(String(bad.response.message)).toMatch(/sha256|unet\/model\.onnx/);
  // ...and works once the file arrives intact.
  await hub('/_fault', { method: 'DELETE' });
  const good = await img2img(page, { prompt: 'a cat', width: 64, height: 64, num_inference_steps: 2, seed: 1, model_id: id }, 'text2img');
  expect(good.response.status, JSON.stringify(good.response.message)).toBe('success');
});

test('a download that cannot fit the quota is refused with a clear message', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  // Chromium's own quota here is gigabytes (CDP's Storage.overrideQuotaForOrigin does not change what
  // estimate() reports), so the engine worker's StorageManager is made to report 5 MB, 1 MB of it used.
  const engineWorker = page.workers().find((w) => w.url().includes('worker'));
  expect(engineWorker, 'the engine worker').toBeTruthy();
  await engineWorker!.evaluate(() => {
    StorageManager.prototype.estimate = async () => ({ quota: 5_000_000, usage: 1_000_000 });
  });
  await addModel(page, 'test/tiny-sd-big');
  // adding read the repository's small graphs (to know what they fix); the refused download fetches nothing
  await hub('/_requests', { method: 'DELETE' });
  await download(page);
  await expect(page.locator('#model-status')).toContainText('Not enough storage', { timeout: 60_000 });
  await expect(page.locator('#model-status')).toContainText('4.0 MB is free');
  expect((await hubRequests()).filter((r) => r.method === 'GET' && r.kind === 'cdn')).toEqual([]);
});

test('delete frees the model and touches nothing else', async ({ page, expectedBackend }) => {
  await openApp(page, expectedBackend, 'tiny-sd');
  const id = await addModel(page, 'test/tiny-sd');
  await download(page);
  await expect(page.locator('#model-status')).toContainText('downloaded and verified', { timeout: 60_000 });
  const before = await page.evaluate(() => window.sdapi!.modelStore!.cached());
  expect(before.map((m) => m.id)).toEqual(expect.arrayContaining([id, 'tiny-sd']));
  await page.click('#model-delete');
  await expect(page.locator('#model-status')).toContainText('was deleted');
  await expect(page.locator('#model-info')).toHaveAttribute('data-cached', 'none');
  const after = await page.evaluate(() => window.sdapi!.modelStore!.cached());
  expect(after.map((m) => m.id)).not.toContain(id);
  expect(after.find((m) => m.id === 'tiny-sd')?.complete).toBe(true);
  const { response } = await img2img(page, { prompt: 'a cat', width: 64, height: 64, num_inference_steps: 2 }, 'text2img');
  expect(response.status).toBe('success');
  await page.screenshot({ path: `test-results/screenshots/models-${expectedBackend}.png`, fullPage: true });
});
