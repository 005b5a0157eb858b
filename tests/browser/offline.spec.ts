/**
 * The installable, offline app: the manifest and icons, the service worker's precache (app shell, ORT's
 * runtime, model configs, never model weights), a generation with the network off after one online visit,
 * the install button and the update banner.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from '@playwright/test';
import { decodePng, expect, openApp, sdapiCall, test } from './fixtures.ts';

const SMALL = { prompt: 'a cat', width: 64, height: 64, num_inference_steps: 2, seed: 1 };
const SCREENSHOTS = resolve(import.meta.dirname, '../../test-results/screenshots');

/** Waits until a service worker controls the page (clientsClaim makes that happen without a reload). */
async function waitForController(page: Page): Promise<void> {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 60_000 });
}

/** Every URL in the page's Cache Storage, across caches. */
async function cachedUrls(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const urls: string[] = [];
    for (const name of await caches.keys()) for (const req of await (await caches.open(name)).keys()) urls.push(req.url);
    return urls;
  });
}

/** RGBA bytes of an output image (a blob: URL lives only as long as its page, so read it there). */
async function pixelsOf(page: Page, url: string): Promise<number[]> {
  return page.evaluate(async (u) => {
    const bitmap = await createImageBitmap(await (await fetch(u)).blob());
    const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d')!;
    ctx.drawImage(bitmap, 0, 0);
    return Array.from(ctx.getImageData(0, 0, bitmap.width, bitmap.height).data);
  }, url);
}

test.describe('web app manifest', () => {
  test('is linked, served as valid JSON, and its icons are PNGs of the declared sizes', async ({ page, request }) => {
    await page.goto('/');
    const href = await page.locator('link[rel="manifest"]').getAttribute('href');
    expect(href).toBeTruthy();
    expect(await page.locator('meta[name="theme-color"]').getAttribute('content')).toMatch(/^#[0-9a-f]{6}$/i);
    const res = await request.get(href!);
    expect(res.status()).toBe(200);
    const manifest = JSON.parse(await res.text()) as {
      name?: string; short_name?: string; start_url?: string; display?: string;
      icons?: { src: string; sizes: string; type: string; purpose?: string }[];
    };
    expect(manifest.name).toBeTruthy();
    expect(manifest.short_name).toBeTruthy();
    expect(manifest.start_url).toBe('/');
    expect(['standalone', 'fullscreen', 'minimal-ui']).toContain(manifest.display);
    const icons = manifest.icons ?? [];
    for (const size of ['192x192', '512x512']) {
      expect(icons.some((i) => i.sizes === size && (i.purpose ?? 'any').includes('any')), `${size} any`).toBe(true);
      expect(icons.some((i) => i.sizes === size && i.purpose?.includes('maskable')), `${size} maskable`).toBe(true);
    }
    for (const icon of icons) {
      const png = await request.get(icon.src);
      expect(png.status(), icon.src).toBe(200);
      expect(png.headers()['content-type']).toBe('image/png');
      const img = decodePng(await png.body());
      expect(`${img.width}x${img.height}`).toBe(icon.sizes);
      if (icon.purpose === 'maskable') {
        // Launchers crop maskable icons to any shape: the corners must be opaque.
        expect(img.data[3], `${icon.src} corner alpha`).toBe(255);
      }
    }
  });
});

test.describe('offline', () => {
  test('after one online visit the app loads and generates with the network off', async ({ page, context, expectedBackend }) => {
    const onnxFromNetwork: string[] = [];
    const onnxFromServiceWorker: string[] = [];
    page.on('response', (r) => {
      // model weights only: the engine's own helper graphs (engine/*.onnx, bytes each) are precached on purpose
      if (/\.onnx(\?|$)/.test(r.url()) && !new URL(r.url()).pathname.startsWith('/engine/')) (r.fromServiceWorker() ? onnxFromServiceWorker : onnxFromNetwork).push(r.url());
    });
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('[W:onnxruntime')) console.log(`[page ${expectedBackend}] ${m.text()}`); });
    // Where each top-level document came from, for the message below if the offline one is not controlled.
    const documents: string[] = [];
    page.on('response', (r) => {
      if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) {
        documents.push(`${r.url()} ${r.status()} ${r.fromServiceWorker() ? 'from the service worker' : 'not from the service worker'}`);
      }
    });

    await openApp(page, expectedBackend);
    await waitForController(page);
    const online = await sdapiCall(page, 'text2img', SMALL);
    expect(online.status, JSON.stringify(online.message)).toBe('success');
    const onlinePixels = await pixelsOf(page, online.output![0]);

    // The precache holds the shell, ORT's runtime, the model configs and the engine's helper graphs, and no weights.
    const urls = await cachedUrls(page);
    const paths = urls.map((u) => new URL(u).pathname);
    for (const needed of [
      '/index.html', '/ort/ort-wasm-simd-threaded.asyncify.wasm', '/ort/ort-wasm-simd-threaded.asyncify.mjs', '/models/models.json',
      '/models/tiny-sd/unet/config.json', '/manifest.webmanifest', '/engine/latent-step.f32.onnx',
    ]) {
      expect(paths, needed).toContain(needed);
    }
    expect(paths.filter((p) => p.endsWith('.onnx') && !p.startsWith('/engine/'))).toEqual([]);

    await context.setOffline(true);
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
    expect(await page.evaluate(() => document.body.dataset.ready), await page.locator('#backend').innerText()).toBe('true');
    await expect(page.locator('#backend')).toContainText(`Backend: ${expectedBackend.toUpperCase()}`);
    // A failure here was seen once in a clean clone and never reproduced: the message carries what would explain it.
    const after = await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.getRegistration();
      return {
        onLine: navigator.onLine,
        controlled: navigator.serviceWorker.controller !== null,
        active: registration?.active?.state ?? null,
        waiting: registration?.waiting?.state ?? null,
        installing: registration?.installing?.state ?? null,
      };
    });
    expect([after.onLine, after.controlled], `after going offline: ${JSON.stringify({ ...after, documents })}`).toEqual([false, true]);
    await expect(page.locator('#pwa-status')).toContainText('Offline');

    const offline = await sdapiCall(page, 'text2img', SMALL);
    expect(offline.status, JSON.stringify(offline.message)).toBe('success');
    expect(offline.meta?.backend).toBe(expectedBackend);
    // Same seed, same model: the offline image is the online one (the weights came back intact from IndexedDB).
    expect(await pixelsOf(page, offline.output![0])).toEqual(onlinePixels);

    // Show the offline result on the page for the screenshot.
    await page.evaluate((url) => {
      const img = document.createElement('img');
      img.src = url;
      img.alt = 'Generated offline';
      document.getElementById('results')!.prepend(img);
    }, offline.output![0]);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: resolve(SCREENSHOTS, `offline-${expectedBackend}.png`), fullPage: true });

    // The engine worker's downloads are seen here (so the check below can fail), all on the online visit.
    expect(onnxFromNetwork.length).toBeGreaterThan(0);
    expect(onnxFromServiceWorker, 'model weights must come from IndexedDB, never from the service worker').toEqual([]);
    await context.setOffline(false);
  });
});

test.describe('install and update UI', () => {
  test('"Install app" appears with the browser\'s install prompt and goes once used or installed', async ({ page }) => {
    await page.goto('/');
    const install = page.locator('#install');
    await expect(install).toBeHidden();
    // Headless Chromium never offers installation, so the test fires the event the way Chromium does.
    await page.evaluate(() => {
      const e = new Event('beforeinstallprompt', { cancelable: true }) as Event & Record<string, unknown>;
      const calls: string[] = [];
      (window as unknown as { promptCalls: string[] }).promptCalls = calls;
      e.prompt = async () => { calls.push('prompt'); };
      e.userChoice = Promise.resolve({ outcome: 'accepted', platform: 'web' });
      window.dispatchEvent(e);
      calls.push(e.defaultPrevented ? 'prevented' : 'not prevented');
    });
    await expect(install).toBeVisible();
    await expect(install).toHaveText('Install app');
    await install.click();
    await expect(install).toBeHidden();
    expect(await page.evaluate(() => (window as unknown as { promptCalls: string[] }).promptCalls)).toEqual(['prevented', 'prompt']);
    await page.evaluate(() => window.dispatchEvent(new Event('appinstalled')));
    await expect(page.locator('#pwa-status')).toHaveText('Installed');
  });

  test('a new version takes over at once and the page says so, with "Reload now"', async ({ page, request, expectedBackend }) => {
    // The service worker activates a new version without waiting and claims open pages.
    const sw = await (await request.get('/sw.js')).text();
    expect(sw).toContain('skipWaiting()');
    expect(sw).toContain('clientsClaim()');

    await page.goto('/?mode=remote');
    await waitForController(page);
    // The first install made the page controlled: that is no update.
    await expect(page.locator('#pwa-status')).toHaveText('Available offline');
    await expect(page.locator('#update-banner')).toBeHidden();
    // A real update needs a second build's sw.js, and Playwright cannot rewrite the browser's own update
    // check of the script. So the test fires what the browser fires when a new version claims this page:
    // `controllerchange`, which workbox-window turns into its `controlling` event.
    await page.evaluate(() => navigator.serviceWorker.dispatchEvent(new Event('controllerchange')));
    await expect(page.locator('#update-banner')).toBeVisible();
    await expect(page.locator('#update-banner')).toContainText('A new version is ready; it will be used the next time you open the app.');
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: resolve(SCREENSHOTS, `update-banner-${expectedBackend}.png`) });
    const loaded = page.waitForEvent('load');
    await page.locator('#update-reload').click();
    await loaded;
    await expect(page.locator('#update-banner')).toBeHidden();
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  });
});
