/**
 * The GPU-resident denoising loop, through the whole engine on onnxruntime-node's WebGPU EP
 * (SwiftShader here): the same images as the host loop, no latents read back between steps
 * except for previews, and the host loop where the device loop does not apply, with the reason.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { decode } from 'fast-png';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine, type LoadedModelInfo, type LoopPreference } from '../../src/engine/engine.ts';
import type { EngineProgress, GenerationResult, Text2ImgJob } from '../../src/engine/jobs.ts';
import type { OrtModule } from '../../src/engine/runtime.ts';
import { ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { generateTinyModels } from '../../tools/generate-tiny-models.ts';
import { buildHelpers } from '../../tools/engine-helpers/graphs.ts';
import { nodeWebgpuUnavailableReason } from '../../tools/node-webgpu.ts';

const WEBGPU_UNAVAILABLE = await nodeWebgpuUnavailableReason();
// Without a Vulkan adapter for onnxruntime-node (see tools/node-webgpu.ts) there is no GPU to keep latents on.
if (WEBGPU_UNAVAILABLE) console.info(`engine-device-loop: skipped, no WebGPU adapter for onnxruntime-node: ${WEBGPU_UNAVAILABLE}`);

let dir = '';
let manifest: Record<string, { files: ModelSource['files'] }> = {};
const helpers = buildHelpers();
const fileFetch: typeof fetch = async (input) => new Response(readFileSync(join(dir, decodeURIComponent(new URL(String(input)).pathname))));

let storeCount = 0;
const helperGraph = async (file: string) => helpers.get(file) ?? Promise.reject(new Error(`no helper ${file}`));

async function engineFor(id: string, loop: LoopPreference, helper = helperGraph): Promise<{ engine: Engine; info: LoadedModelInfo }> {
  const engine = new Engine(
    ortNode as unknown as OrtModule,
    new ModelStore({ fetch: fileFetch, store: createStore(`device-loop-${storeCount++}`, 'files') }),
    { backend: 'webgpu', reason: 'test', shaderF16: false },
    { loop, helperGraph: helper },
  );
  const info = await engine.loadModel({ id, baseUrl: `http://models.test/${id}/`, files: manifest[id].files });
  return { engine, info };
}

const SIZE = 64;
const STEPS = 4;

function job(overrides: Partial<Text2ImgJob> = {}): Text2ImgJob {
  return {
    mode: 'text2img', prompt: 'a cat sitting on a bench', negativePrompt: '', width: SIZE, height: SIZE, samples: 1, steps: STEPS,
    guidanceScale: 7.5, seed: 42, schedulerOverrides: {}, safetyChecker: false, scheduler: 'EulerAncestralDiscreteScheduler', ...overrides,
  };
}

function meanAbsDiff(a: GenerationResult, b: GenerationResult): number {
  const x = decode(a.images[0]).data as Uint8Array;
  const y = decode(b.images[0]).data as Uint8Array;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i] - y[i]);
  return s / x.length;
}

const LATENT_BYTES = 4 * (SIZE / 8) * (SIZE / 8) * 4;

describe.skipIf(WEBGPU_UNAVAILABLE !== null)('the GPU-resident loop (onnxruntime-node WebGPU)', () => {
  let device: Engine;
  let naive: Engine;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'device-loop-'));
    manifest = (await generateTinyModels(dir)) as unknown as typeof manifest;
    device = (await engineFor('tiny-sd', 'auto')).engine;
    naive = (await engineFor('tiny-sd', 'naive')).engine;
  }, 120_000);

  it('gives the host loop\'s image with no latents read back between steps', async () => {
    const onDevice = await device.generate(job());
    const baseline = await naive.generate(job());
    const d = onDevice.timings.loop!;
    const n = baseline.timings.loop!;
    expect(d.mode).toBe('device');
    expect(n.mode).toBe('naive');
    expect(n.reason).toMatch(/naive baseline/);
    // no previews asked for: only the last step reads back, one latent
    expect(d.readbackBytesOutsidePreviews).toBe(0);
    expect(d.readbackBytes).toBe(LATENT_BYTES);
    expect(d.previewSteps).toBe(0);
    // the naive loop reads both halves of the prediction back on every step
    expect(n.readbackBytesOutsidePreviews / n.stepsOutsidePreviews).toBe(2 * LATENT_BYTES);
    // same seeds, same ancestral noise: the images differ only by GPU float rounding
    expect(meanAbsDiff(onDevice, baseline)).toBeLessThan(1);
    // the device loop runs one UNet call and one step graph per step; the naive loop two UNet calls and a read-back each
    expect(d.sessionRunSeconds).toBeGreaterThan(0);
  }, 180_000);

  it('reads latents back only on the steps that show a preview', async () => {
    const progress: EngineProgress[] = [];
    const r = await device.generate(job({ seed: 7 }), (p) => progress.push(p));
    const l = r.timings.loop!;
    const previews = progress.filter((p) => p.phase === 'denoise' && p.preview).length;
    expect(previews).toBeGreaterThan(0);
    expect(l.previewSteps).toBe(previews);
    expect(l.readbackBytes).toBe((previews + 1) * LATENT_BYTES);
    expect(l.readbackBytesOutsidePreviews).toBe(0);
  }, 180_000);

  it('runs a multistep scheduler through the host, and says why', async () => {
    const r = await device.generate(job({ scheduler: 'DPMSolverMultistepScheduler' }));
    const l = r.timings.loop!;
    expect(l.mode).toBe('host');
    expect(l.reason).toMatch(/DPMSolverMultistepScheduler/);
    expect(l.readbackBytesOutsidePreviews / l.stepsOutsidePreviews).toBe(2 * LATENT_BYTES);
    expect(decode(r.images[0]).data.some((v) => v > 0)).toBe(true);
  }, 180_000);

  it('keeps the device loop without guidance (batch 1)', async () => {
    const r = await device.generate(job({ guidanceScale: 1 }));
    expect(r.timings.loop!.mode).toBe('device');
    expect(r.timings.loop!.readbackBytes).toBe(LATENT_BYTES);
  }, 180_000);

  it('runs the host loop, and says why, when the helper graphs cannot be loaded', async () => {
    const { engine, info } = await engineFor('tiny-sd', 'auto', async () => {
      throw new Error('offline');
    });
    expect(info.deviceLoop).toMatch(/helper graphs could not be loaded \(offline\)/);
    const r = await engine.generate(job({ steps: 2 }));
    expect(r.timings.loop!.mode).toBe('host');
    expect(decode(r.images[0]).data.some((v) => v > 0)).toBe(true);
  }, 180_000);
});

describe.skipIf(WEBGPU_UNAVAILABLE !== null)('the GPU-resident loop with SDXL conditioning (onnxruntime-node WebGPU)', () => {
  it('keeps an SDXL job on the GPU (text embeddings uploaded once, pooled and time ids from the host) with the host loop\'s image', async () => {
    const { sdxlSetFiles } = await import('../../tools/tiny-models/sdxl-set.ts');
    const files = new Map(sdxlSetFiles().map((f) => [f.path, f.bytes]));
    const sdxlFetch: typeof fetch = async (input) => new Response(files.get(decodeURIComponent(new URL(String(input)).pathname).replace(/^\/tiny-sdxl\//, '')) as Uint8Array<ArrayBuffer>);
    const make = async (loop: LoopPreference) => {
      const engine = new Engine(
        ortNode as unknown as OrtModule,
        new ModelStore({ fetch: sdxlFetch, store: createStore(`device-loop-sdxl-${storeCount++}`, 'files'), storage: null }),
        { backend: 'webgpu', reason: 'test', shaderF16: false },
        { loop, helperGraph },
      );
      await engine.loadModel({ id: 'tiny-sdxl', baseUrl: 'http://models.test/tiny-sdxl/', files: [...files.keys()].map((path) => ({ path })) });
      return engine;
    };
    const sdxlJob = job({ steps: 2, scheduler: 'EulerDiscreteScheduler', guidanceScale: 5 });
    const onDevice = await (await make('auto')).generate(sdxlJob);
    const baseline = await (await make('naive')).generate(sdxlJob);
    expect(onDevice.timings.loop!.mode).toBe('device');
    expect(onDevice.timings.loop!.readbackBytes).toBe(LATENT_BYTES);
    expect(meanAbsDiff(onDevice, baseline)).toBeLessThan(1);
  }, 300_000);
});
