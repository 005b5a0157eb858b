/**
 * Shared set-up for browser tests: the backend each project expects, the app opened on a model,
 * the shared example images served where requests point, and output PNGs read back as pixels.
 */
import { test as base, expect, type Page } from '@playwright/test';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decode } from 'fast-png';

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

export const test = base.extend<BackendOptions>({
  expectedBackend: ['webgpu', { option: true }],
});
export { expect };

/** Serves `body` at `url` inside the page's network (the machine has no internet). */
export async function serve(page: Page, url: string, body: Buffer | string, contentType: string): Promise<void> {
  await page.route(url, (route) => route.fulfill({ status: 200, body, contentType, headers: { 'Access-Control-Allow-Origin': '*' } }));
}

/** Opens the app on a model, waits until it is ready, and checks it runs on the project's backend. */
export async function openApp(page: Page, expectedBackend: 'webgpu' | 'wasm', model = 'tiny-sd'): Promise<void> {
  if (fixturesPresent) await serve(page, EXAMPLE_URL, readFileSync(EXAMPLE_IMAGE), 'image/png');
  // No ?backend=: the wasm project's Chromium has no WebGPU adapter, so the app must fall back by itself.
  await page.goto(`/?${new URLSearchParams({ model })}`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 120_000 });
  expect(await page.evaluate(() => document.body.dataset.ready), await page.locator('#backend').innerText()).toBe('true');
  await expect(page.locator('#backend')).toContainText(`Backend: ${expectedBackend.toUpperCase()}`);
  if (expectedBackend === 'wasm') await expect(page.locator('#backend')).toContainText('no adapter');
}

export type ApiResult = { status: string; output?: string[]; meta?: Record<string, unknown>; message?: unknown; id?: number; generationTime?: number };

/** Calls window.sdapi.img2img in the page and returns the response plus its output PNGs' bytes (base64). */
export async function img2img(page: Page, request: unknown): Promise<{ response: ApiResult; pngs: Buffer[] }> {
  const { response, pngs } = await page.evaluate(async (req) => {
    const r = (await window.sdapi!.img2img(req)) as { status: string; output?: string[] };
    const files: string[] = [];
    for (const url of r.output ?? []) {
      const blob = await (await fetch(url)).blob();
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      files.push(btoa(s));
    }
    return { response: r, pngs: files };
  }, request);
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
