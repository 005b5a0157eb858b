/**
 * Shared set-up for browser tests: the backend each project expects, the app opened on a model,
 * the shared example images served where requests point, and output PNGs read back as pixels.
 */
import { test as base, expect, type Page } from '@playwright/test';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decode, encode } from 'fast-png';

export interface BackendOptions {
  expectedBackend: 'webgpu' | 'wasm';
}

export const FIXTURES = resolve(import.meta.dirname, '../../../shared/fixtures/images');
export const EXAMPLE_IMAGE = resolve(FIXTURES, 'overture-creations-5sI6fQgYIuo.png');
export const EXAMPLE_URL = 'https://raw.githubusercontent.com/CompVis/stable-diffusion/main/data/inpainting_examples/overture-creations-5sI6fQgYIuo.png';
export const fixturesPresent = existsSync(EXAMPLE_IMAGE);
export const FIXTURES_MISSING = `the shared fixtures are missing: expected ${EXAMPLE_IMAGE}`;

/** The seed document's example request, as the hosted API documents it. */
export const EXAMPLE_REQUEST = {
  key: '', prompt: 'a cat sitting on a bench', negative_prompt: null,
  init_image: EXAMPLE_URL,
  width: '512', height: '512', samples: '1', num_inference_steps: '30',
  safety_checker: 'no', enhance_prompt: 'yes', guidance_scale: 7.5, strength: 0.7,
  seed: null, webhook: null, track_id: null,
};

/** The mock hosted API that playwright.config.ts starts. */
export const MOCK_API = `http://127.0.0.1:${Number(process.env.MOCK_API_PORT ?? 4398)}`;
export const MOCK_KEY = 'test-key';
/** The stand-in Hugging Face hub that playwright.config.ts starts. */
export const MOCK_HUB = `http://127.0.0.1:${Number(process.env.MOCK_HUB_PORT ?? 4397)}`;

/**
 * Hosts that can never reach anyone: loopback, and the TLDs reserved for tests and for names that must
 * not resolve (RFC 2606, RFC 6761). Requests to them may fail on purpose; a failed request to any other
 * host means a test relied on the internet.
 */
function isOffTheInternet(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return true;
  }
  if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]') return true;
  return /\.(test|invalid|example|localhost)$/.test(host);
}

export const test = base.extend<BackendOptions & { noInternet: void }>({
  expectedBackend: ['webgpu', { option: true }],
  // playwright.config.ts makes every host name but localhost fail to resolve, so a request that a test
  // did not serve (page.route, or a loopback server) fails here instead of reaching the internet on a
  // machine that has it. This names such requests, so the test says what to serve instead of timing out
  // somewhere downstream.
  noInternet: [async ({ context }, use) => {
    const reached: string[] = [];
    context.on('requestfailed', (r) => {
      if (!isOffTheInternet(r.url())) reached.push(`${r.url()} (${r.failure()?.errorText ?? 'failed'})`);
    });
    await use();
    expect(reached, 'requests that would have needed the internet: serve them on loopback or with page.route').toEqual([]);
  }, { auto: true }],
});
export { expect };

/** Where tests serve a generated init image (a reserved name: unserved, it resolves nowhere). */
export const TEST_IMAGE_URL = 'https://images.example.test/init-512.png';

/**
 * A 512x512 RGB PNG made here, for tests that need some init image but not the API's example one
 * (that one lives in ../shared/fixtures, which a fresh clone lacks). Smooth colour plus a fine
 * deterministic texture, so it is about as costly to decode as a photo of that size.
 */
export function testImagePng(width = 512, height = 512): Buffer {
  const data = new Uint8Array(width * height * 3);
  let state = 0x9e3779b9;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const noise = (state >>> 24) % 32;
      const i = (y * width + x) * 3;
      data[i] = Math.min(255, Math.round((x / width) * 200) + noise);
      data[i + 1] = Math.min(255, Math.round((y / height) * 200) + noise);
      data[i + 2] = Math.min(255, 96 + noise * 2);
    }
  }
  return Buffer.from(encode({ width, height, channels: 3, data }));
}

/** Serves `body` at `url` inside the page's network (the machine has no internet). */
export async function serve(page: Page, url: string, body: Buffer | string, contentType: string): Promise<void> {
  await page.route(url, (route) => route.fulfill({ status: 200, body, contentType, headers: { 'Access-Control-Allow-Origin': '*' } }));
}

/** Opens the app on a model, waits until it is ready, and checks it runs on the project's backend. */
export interface AppOptions {
  model?: string;
  mode?: 'local' | 'remote' | 'auto';
  endpoint?: string;
  /**
   * Stored as the page's API key before it starts (never put in the URL). With `endpoint`, that
   * endpoint is saved too: the app holds a saved key back from an endpoint that only the address names.
   */
  key?: string;
}

export async function openApp(page: Page, expectedBackend: 'webgpu' | 'wasm', modelOrOptions: string | AppOptions = 'tiny-sd'): Promise<void> {
  const o: AppOptions = typeof modelOrOptions === 'string' ? { model: modelOrOptions } : modelOrOptions;
  if (fixturesPresent) await serve(page, EXAMPLE_URL, readFileSync(EXAMPLE_IMAGE), 'image/png');
  if (o.key) {
    await page.addInitScript(([key, endpoint]) => {
      localStorage.setItem('sdapi.key', key);
      if (endpoint) localStorage.setItem('sdapi.endpoint', endpoint);
    }, [o.key, o.endpoint ?? ''] as const);
  }
  // No ?backend=: the wasm project's Chromium has no WebGPU adapter, so the app must fall back by itself.
  const query = new URLSearchParams({ model: o.model ?? 'tiny-sd' });
  if (o.mode) query.set('mode', o.mode);
  if (o.endpoint) query.set('endpoint', o.endpoint);
  await page.goto(`/?${query}`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
  expect(await page.evaluate(() => document.body.dataset.ready), await page.locator('#backend').innerText()).toBe('true');
  if (o.mode === 'remote') {
    await expect(page.locator('#backend')).toContainText('Backend: REMOTE');
    return;
  }
  await expect(page.locator('#backend')).toContainText(`Backend: ${expectedBackend.toUpperCase()}`);
  if (expectedBackend === 'wasm') await expect(page.locator('#backend')).toContainText('no adapter');
}

/** Calls one of window.sdapi's methods in the page and returns its answer (JSON-safe). */
export async function sdapiCall(page: Page, method: 'text2img' | 'img2img' | 'inpaint' | 'fetch' | 'systemLoad', arg?: unknown): Promise<ApiResult & Record<string, unknown>> {
  return page.evaluate(async ([m, a]) => {
    const api = window.sdapi as unknown as Record<string, (x?: unknown) => Promise<unknown>>;
    return (await api[m as string](a)) as never;
  }, [method, arg] as const);
}

export type ApiResult = { status: string; output?: string[]; meta?: Record<string, unknown>; message?: unknown; id?: number; generationTime?: number };

/** Calls window.sdapi.img2img (or another of its image calls) in the page and returns the response plus its output PNGs' bytes. */
export async function img2img(
  page: Page,
  request: unknown,
  endpoint: 'text2img' | 'img2img' | 'inpaint' | 'outpaint' | 'superResolution' = 'img2img',
): Promise<{ response: ApiResult; pngs: Buffer[] }> {
  const { response, pngs } = await page.evaluate(async ([req, ep]) => {
    const r = (await window.sdapi![ep](req)) as { status: string; output?: string[] };
    const files: string[] = [];
    for (const url of r.output ?? []) {
      const blob = await (await fetch(url)).blob();
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      files.push(btoa(s));
    }
    return { response: r, pngs: files };
  }, [request, endpoint] as const);
  return { response: response as ApiResult, pngs: pngs.map((b) => Buffer.from(b, 'base64')) };
}

export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export function decodePng(png: Buffer): Pixels {
  const img = decode(png);
  return { width: img.width, height: img.height, channels: img.channels, data: img.data as Uint8Array };
}

/** Mean absolute difference per channel value, 0..255, over RGB. */
export function meanAbsDiff(a: Pixels, b: Pixels): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    for (let c = 0; c < 3; c++) {
      sum += Math.abs(a.data[i * a.channels + c] - b.data[i * b.channels + c]);
      n++;
    }
  }
  return sum / n;
}

/** A PNG of one colour, drawn by the page itself (no fixture file, no network). */
export async function pngFromPage(page: Page, width: number, height: number, color: string): Promise<Buffer> {
  const b64 = await page.evaluate(async ([w, h, c]) => {
    const canvas = new OffscreenCanvas(w, h);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = c;
    ctx.fillRect(0, 0, w, h);
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (const byte of bytes) s += String.fromCharCode(byte);
    return btoa(s);
  }, [width, height, color] as const);
  return Buffer.from(b64, 'base64');
}

/** The bytes behind a blob:/data: URL in the page. */
export async function bytesOf(page: Page, url: string): Promise<Buffer> {
  const b64 = await page.evaluate(async (u) => {
    const bytes = new Uint8Array(await (await fetch(u)).arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, url);
  return Buffer.from(b64, 'base64');
}
