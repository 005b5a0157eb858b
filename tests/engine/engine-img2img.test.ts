/**
 * The whole engine under Node: generated tiny models, loaded through the model store (fake
 * IndexedDB) into onnxruntime-node, img2img through the real pipeline and schedulers.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { decode } from 'fast-png';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import type { Img2ImgJob } from '../../src/engine/jobs.ts';
import type { OrtModule } from '../../src/engine/runtime.ts';
import { ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { generateTinyModels } from '../../tools/generate-tiny-models.ts';

const ort = ortNode as unknown as OrtModule; // onnxruntime-node implements the same onnxruntime-common API
let dir: string;
let manifest: Record<string, { files: ModelSource['files'] }>;
const requested: string[] = [];

/** Serves the generated files as a hub would, counting requests. */
const fileFetch: typeof fetch = async (input) => {
  const url = new URL(String(input));
  requested.push(url.pathname);
  return new Response(readFileSync(join(dir, decodeURIComponent(url.pathname))));
};

function source(id: string): ModelSource {
  return { id, baseUrl: `http://models.test/${id}/`, files: manifest[id].files };
}

/** A smooth test image so block averages are meaningful. */
function gradient(w: number, h: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 4;
    rgba[i] = (x * 255) / (w - 1);
    rgba[i + 1] = (y * 255) / (h - 1);
    rgba[i + 2] = 128;
    rgba[i + 3] = 255;
  }
  return rgba;
}

function job(overrides: Partial<Img2ImgJob> = {}): Img2ImgJob {
  const width = overrides.width ?? 64;
  const height = overrides.height ?? 64;
  return {
    mode: 'img2img', prompt: 'a cat sitting on a bench', negativePrompt: '', width, height, samples: 1, steps: 10,
    guidanceScale: 7.5, strength: 0.7, seed: 42, schedulerOverrides: {}, safetyChecker: false,
    initImage: { rgba: gradient(width, height), width, height }, ...overrides,
  };
}

function pixels(png: Uint8Array): Uint8Array {
  return decode(png).data as Uint8Array;
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tiny-models-'));
  manifest = (await generateTinyModels(dir)) as unknown as typeof manifest;
});

describe('engine img2img under onnxruntime-node', () => {
  it('loads through the store, then a second engine loads from the cache with no request', async () => {
    const store = createStore('engine-test-cache', 'files');
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store }), { backend: 'cpu', reason: 'test', shaderF16: false });
    requested.length = 0;
    const info = await engine.loadModel(source('tiny-sd'));
    expect(info.schedulerClass).toBe('EulerDiscreteScheduler');
    expect(info.inputTypes['unet.timestep']).toBe('int64');
    expect(requested.length).toBe(manifest['tiny-sd'].files.length);
    const again = new Engine(ort, new ModelStore({ fetch: fileFetch, store }), { backend: 'cpu', reason: 'test', shaderF16: false });
    requested.length = 0;
    await again.loadModel(source('tiny-sd'));
    expect(requested).toEqual([]);
  });

  it('is deterministic per seed and sensitive to seed, prompt and strength', async () => {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore('e2', 'files') }), { backend: 'cpu', reason: 'test', shaderF16: false });
    await engine.loadModel(source('tiny-sd'));
    const a = pixels((await engine.generate(job())).images[0]);
    const b = pixels((await engine.generate(job())).images[0]);
    expect(meanAbsDiff(a, b)).toBe(0);
    expect(meanAbsDiff(a, pixels((await engine.generate(job({ seed: 43 }))).images[0]))).toBeGreaterThan(0.5);
    expect(meanAbsDiff(a, pixels((await engine.generate(job({ prompt: 'a red mountain painting' }))).images[0]))).toBeGreaterThan(0.5);
    expect(meanAbsDiff(a, pixels((await engine.generate(job({ strength: 0.3 }))).images[0]))).toBeGreaterThan(0.5);
  });

  it('runs samples with seed + i and reports steps actually run', async () => {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore('e3', 'files') }), { backend: 'cpu', reason: 'test', shaderF16: false });
    await engine.loadModel(source('tiny-sd'));
    const two = await engine.generate(job({ samples: 2, steps: 10, strength: 0.5 }));
    expect(two.seeds).toEqual([42, 43]);
    expect(two.timings.stepsRun).toBe(2 * 5);
    const single = await engine.generate(job({ seed: 43, steps: 10, strength: 0.5 }));
    expect(meanAbsDiff(pixels(two.images[1]), pixels(single.images[0]))).toBe(0);
  });

  it('the analytic model returns the block-averaged image at low strength', async () => {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore('e4', 'files') }), { backend: 'cpu', reason: 'test', shaderF16: false });
    await engine.loadModel(source('tiny-sd-analytic'));
    const r = await engine.generate(job({ strength: 0.05, steps: 30 }));
    const out = pixels(r.images[0]);
    const src = gradient(64, 64);
    let err = 0;
    for (let by = 0; by < 64; by += 8) for (let bx = 0; bx < 64; bx += 8) for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) s += src[(y * 64 + x) * 4 + c];
      const avg = s / 64;
      for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) err += Math.abs(out[(y * 64 + x) * 3 + c] - avg);
    }
    expect(err / (64 * 64 * 3)).toBeLessThan(6);
  });

  it('handles float16 inputs and outputs and a float16 timestep, as the session declares them', async () => {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore('e5', 'files') }), { backend: 'cpu', reason: 'test', shaderF16: false });
    const info = await engine.loadModel(source('tiny-sd-fp16io'));
    expect(info.inputTypes['unet.timestep']).toBe('float16');
    expect(info.inputTypes['unet.sample']).toBe('float16');
    const r = await engine.generate(job());
    const px = pixels(r.images[0]);
    expect(new Set(px).size).toBeGreaterThan(20);
  });

  it('stops within one step when cancelled', async () => {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore('e6', 'files') }), { backend: 'cpu', reason: 'test', shaderF16: false });
    await engine.loadModel(source('tiny-sd'));
    let steps = 0;
    let stop = false;
    await expect(engine.generate(job({ steps: 20, strength: 1 }), (p) => {
      if (p.phase === 'denoise') {
        steps++;
        if (p.step === 3) stop = true;
      }
    }, () => stop)).rejects.toThrow(/cancelled/);
    expect(steps).toBe(3);
  });

  it('stops after the step whose progress is answered "cancelled", and waits for that answer before going on', async () => {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore('e7', 'files') }), { backend: 'cpu', reason: 'test', shaderF16: false });
    await engine.loadModel(source('tiny-sd'));
    const seen: number[] = [];
    // A slow answer, as from a busy page: step 4 must not start before it arrives.
    await expect(engine.generate(job({ steps: 20, strength: 1, samples: 2 }), async (p) => {
      if (p.phase !== 'denoise') return undefined;
      seen.push(p.step);
      await new Promise((r) => setTimeout(r, 30));
      return p.step === 3;
    })).rejects.toThrow(/cancelled/);
    expect(seen).toEqual([1, 2, 3]);
  });
});
