/**
 * text2img, inpaint (4- and 9-channel UNets), the safety checker and device loss, through the
 * whole engine under onnxruntime-node with the generated tiny models. A thin wrapper around
 * onnxruntime-node's sessions records what each model is fed and can replace an output or fail
 * a run, so tests can see the 9 UNet channels, force a near-white image, or lose the device.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { decode } from 'fast-png';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeviceLostError, Engine, isDeviceFailure } from '../../src/engine/engine.ts';
import type { GenerationJob, InpaintJob, Text2ImgJob } from '../../src/engine/jobs.ts';
import type { OrtModule } from '../../src/engine/runtime.ts';
import { outpaintCanvas } from '../../src/engine/outpaint-canvas.ts';
import { ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { generateTinyModels } from '../../tools/generate-tiny-models.ts';

type Feeds = Record<string, ortNode.Tensor>;
type Results = Record<string, ortNode.Tensor>;

/** Which component a session is, from its input names. */
function component(inputNames: readonly string[]): string {
  if (inputNames.includes('encoder_hidden_states')) return 'unet';
  if (inputNames.includes('clip_input')) return 'safety_checker';
  if (inputNames.includes('latent_sample')) return 'vae_decoder';
  if (inputNames.includes('input_ids')) return 'text_encoder';
  return 'vae_encoder';
}

interface Interceptor {
  /** Every run, in order: the component and its feeds' dims. */
  runs: { component: string; dims: Record<string, readonly number[]> }[];
  /** Replaces a run's results, or throws, before the engine sees them. */
  after?: (component: string, results: Results) => Results;
  before?: (component: string, feeds: Feeds) => void;
}

/** onnxruntime-node whose sessions report to `spy`; everything else is the real module. */
function spyingOrt(spy: Interceptor): OrtModule {
  const create = async (...args: Parameters<typeof ortNode.InferenceSession.create>) => {
    const session = await ortNode.InferenceSession.create(...args);
    const name = component(session.inputNames);
    return new Proxy(session, {
      get(target, prop) {
        if (prop === 'run') {
          return async (feeds: Feeds) => {
            spy.runs.push({ component: name, dims: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])) });
            spy.before?.(name, feeds);
            const results = (await target.run(feeds)) as Results;
            return spy.after ? spy.after(name, results) : results;
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return { ...ortNode, InferenceSession: { ...ortNode.InferenceSession, create } } as unknown as OrtModule;
}

let dir: string;
let manifest: Record<string, { files: ModelSource['files'] }>;

const fileFetch: typeof fetch = async (input) => new Response(readFileSync(join(dir, decodeURIComponent(new URL(String(input)).pathname))));

function source(id: string): ModelSource {
  return { id, baseUrl: `http://models.test/${id}/`, files: manifest[id].files };
}

let storeCount = 0;
async function engineFor(id: string, spy: Interceptor = { runs: [] }): Promise<Engine> {
  const engine = new Engine(spyingOrt(spy), new ModelStore({ fetch: fileFetch, store: createStore(`modes-${storeCount++}`, 'files') }), {
    backend: 'cpu', reason: 'test', shaderF16: false,
  });
  await engine.loadModel(source(id));
  return engine;
}

const SIZE = 64;

/** A smooth test image so block averages are meaningful. */
function gradient(w = SIZE, h = SIZE): Uint8Array {
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

/** White (repaint) where x < `split`, black (keep) elsewhere. */
function splitMask(split = SIZE / 2, w = SIZE, h = SIZE): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const v = i % w < split ? 255 : 0;
    rgba.set([v, v, v, 255], i * 4);
  }
  return rgba;
}

const base = {
  prompt: 'a cat sitting on a bench', negativePrompt: '', width: SIZE, height: SIZE, samples: 1, steps: 10,
  guidanceScale: 7.5, seed: 42, schedulerOverrides: {}, safetyChecker: false,
};

function text2img(overrides: Partial<Text2ImgJob> = {}): Text2ImgJob {
  return { mode: 'text2img', ...base, ...overrides };
}

function inpaint(overrides: Partial<InpaintJob> = {}): InpaintJob {
  return {
    mode: 'inpaint', ...base, strength: 1,
    initImage: { rgba: gradient(), width: SIZE, height: SIZE },
    maskImage: { rgba: splitMask(), width: SIZE, height: SIZE },
    ...overrides,
  };
}

function pixels(png: Uint8Array): Uint8Array {
  return decode(png).data as Uint8Array;
}

async function image(engine: Engine, job: GenerationJob): Promise<Uint8Array> {
  return pixels((await engine.generate(job)).images[0]);
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** Mean |out - 8x8 block average of src| over the columns [x0, x1), RGB out vs RGBA src. */
function blockAverageError(out: Uint8Array, src: Uint8Array, x0: number, x1: number): number {
  let err = 0;
  let n = 0;
  for (let by = 0; by < SIZE; by += 8) for (let bx = x0; bx < x1; bx += 8) for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) s += src[(y * SIZE + x) * 4 + c];
    const avg = s / 64;
    for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) {
      err += Math.abs(out[(y * SIZE + x) * 3 + c] - avg);
      n++;
    }
  }
  return err / n;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tiny-models-'));
  manifest = (await generateTinyModels(dir)) as unknown as typeof manifest;
});

describe('text2img', () => {
  it('is deterministic per seed, changes with seed and prompt, and runs every step', async () => {
    const engine = await engineFor('tiny-sd');
    const r = await engine.generate(text2img());
    expect(r.timings.stepsRun).toBe(10);
    expect(r.seeds).toEqual([42]);
    const a = pixels(r.images[0]);
    expect(new Set(a).size).toBeGreaterThan(20);
    expect(meanAbsDiff(a, await image(engine, text2img()))).toBe(0);
    expect(meanAbsDiff(a, await image(engine, text2img({ seed: 43 })))).toBeGreaterThan(0.5);
    expect(meanAbsDiff(a, await image(engine, text2img({ prompt: 'a red mountain painting' })))).toBeGreaterThan(0.5);
  });

  it('never runs the VAE encoder and feeds the UNet [2, 4, H/8, W/8]', async () => {
    const spy: Interceptor = { runs: [] };
    const engine = await engineFor('tiny-sd', spy);
    await engine.generate(text2img({ width: 64, height: 48, steps: 3 }));
    expect(spy.runs.some((r) => r.component === 'vae_encoder')).toBe(false);
    const unet = spy.runs.filter((r) => r.component === 'unet');
    expect(unet).toHaveLength(3);
    expect(unet[0].dims.sample).toEqual([2, 4, 6, 8]);
  });
});

describe('inpaint with the 4-channel analytic model', () => {
  it('keeps the black half as the block-averaged init image and repaints the white half', async () => {
    const engine = await engineFor('tiny-sd-analytic');
    for (const strength of [1, 0.75]) {
      const out = await image(engine, inpaint({ strength }));
      const src = gradient();
      // kept (right) half: the image latents themselves after the last step, decoded
      expect(blockAverageError(out, src, SIZE / 2, SIZE)).toBeLessThan(0.6);
      // repainted (left) half: generated from noise
      expect(blockAverageError(out, src, 0, SIZE / 2)).toBeGreaterThan(10);
    }
  });

  it('is deterministic per seed and follows the mask', async () => {
    const engine = await engineFor('tiny-sd-analytic');
    const a = await image(engine, inpaint());
    expect(meanAbsDiff(a, await image(engine, inpaint()))).toBe(0);
    expect(meanAbsDiff(a, await image(engine, inpaint({ seed: 7 })))).toBeGreaterThan(0.5);
    const quarter = await image(engine, inpaint({ maskImage: { rgba: splitMask(16), width: SIZE, height: SIZE } }));
    expect(blockAverageError(quarter, gradient(), 16, SIZE)).toBeLessThan(0.6);
  });

  it('rejects a mask of another size than the job', async () => {
    const engine = await engineFor('tiny-sd-analytic');
    await expect(engine.generate(inpaint({ maskImage: { rgba: splitMask(8, 32, 32), width: 32, height: 32 } }))).rejects.toThrow(/mask image is 32x32/);
  });
});

/** sum of bytes, and sum of (byte * index) mod 1000003: enough to tell any single-pixel difference. */
function checksums(a: Uint8Array): [number, number] {
  let s = 0;
  let c = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i];
    c = (c + ((a[i] * i) % 1000003)) % 1000003;
  }
  return [s, c];
}

describe('the analytic model against a torch re-implementation of diffusers\' loops', () => {
  // Printed by a throwaway torch 1.13 script (not in the repo) doing StableDiffusionPipeline's and
  // StableDiffusionInpaintPipeline's steps with EulerDiscreteScheduler (SD 1.5 config, leading),
  // torch.Generator().manual_seed(42), the analytic VAE and UNet, guidance 7.5, 10 steps, 64x64,
  // the gradient image and the left-half mask: [sum of RGB bytes, weighted checksum].
  it('matches pixel for pixel in text2img and in inpaint at strength 0.75 and 1', async () => {
    const engine = await engineFor('tiny-sd-analytic');
    expect(checksums(await image(engine, text2img()))).toEqual([1635072, 889788]);
    expect(checksums(await image(engine, inpaint({ strength: 0.75 })))).toEqual([1718016, 417014]);
    expect(checksums(await image(engine, inpaint({ strength: 1 })))).toEqual([1744960, 731439]);
  });
});

describe('inpaint with the 9-channel tiny-sd-inpaint model', () => {
  it('feeds the UNet 9 channels, runs deterministically and depends on the mask', async () => {
    const spy: Interceptor = { runs: [] };
    const engine = await engineFor('tiny-sd-inpaint', spy);
    const r = await engine.generate(inpaint({ strength: 0.8 }));
    expect(r.timings.stepsRun).toBe(8);
    const unet = spy.runs.filter((run) => run.component === 'unet');
    expect(unet).toHaveLength(8);
    expect(unet.every((run) => run.dims.sample.join() === '2,9,8,8')).toBe(true);
    // strength < 1 encodes the image and the masked image
    expect(spy.runs.filter((run) => run.component === 'vae_encoder')).toHaveLength(2);
    const a = pixels(r.images[0]);
    expect(new Set(a).size).toBeGreaterThan(20);
    expect(meanAbsDiff(a, await image(engine, inpaint({ strength: 0.8 })))).toBe(0);
    const other = await image(engine, inpaint({ strength: 0.8, maskImage: { rgba: splitMask(16), width: SIZE, height: SIZE } }));
    expect(meanAbsDiff(a, other)).toBeGreaterThan(1);
  });

  it('encodes only the masked image at full strength', async () => {
    const spy: Interceptor = { runs: [] };
    const engine = await engineFor('tiny-sd-inpaint', spy);
    await engine.generate(inpaint({ steps: 2 }));
    expect(spy.runs.filter((run) => run.component === 'vae_encoder')).toHaveLength(1);
  });

  it('refuses text2img on an inpainting UNet with a clear message', async () => {
    const engine = await engineFor('tiny-sd-inpaint');
    await expect(engine.generate(text2img({ steps: 2 }))).rejects.toThrow(/9 input channels/);
  });
});

/** Makes the VAE decoder's output near-white (0.96 -> pixel 250), as a flagged image would be in this tiny checker's rule. */
function whiteDecoder(spy: Interceptor): void {
  spy.after = (name, results) => {
    if (name !== 'vae_decoder') return results;
    const [key, t] = Object.entries(results)[0];
    return { [key]: new ortNode.Tensor('float32', new Float32Array(t.size).fill(0.96), t.dims) };
  };
}

describe('outpainting (inpainting on a larger canvas with a feathered overlay)', () => {
  it('keeps the image inside the band exactly, blends the band, and generates the new area', async () => {
    const engine = await engineFor('tiny-sd');
    // A 32x64 image centred on the 64x64 canvas: new area left and right, 8 px bands on those edges only.
    const original = { rgba: new Uint8ClampedArray(gradient(32, SIZE)), width: 32, height: SIZE };
    const canvas = outpaintCanvas(original, SIZE, SIZE, 8);
    expect(canvas.placement).toEqual({ x: 16, y: 0, width: 32, height: SIZE });
    const job = inpaint({ initImage: canvas.initImage, maskImage: canvas.maskImage, overlay: canvas.overlay });
    const out = await image(engine, job);
    const plain = await image(engine, inpaint({ initImage: canvas.initImage, maskImage: canvas.maskImage }));
    let interior = 0;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const i = (y * SIZE + x) * 3; // the PNGs are RGB
        const src = (y * 32 + (x - 16)) * 4;
        if (x >= 24 && x < 40) {
          // deeper than the band: the original's pixels, exactly
          for (let c = 0; c < 3; c++) expect(out[i + c]).toBe(original.rgba[src + c]);
          interior++;
        } else if (x < 16 || x >= 48) {
          // new area: the generated pixels untouched by the overlay
          for (let c = 0; c < 3; c++) expect(out[i + c]).toBe(plain[i + c]);
        } else {
          // the band: between what was there and what was generated
          const w = Math.min(x - 16 + 0.5, 48 - x - 0.5) / 8;
          for (let c = 0; c < 3; c++) expect(Math.abs(out[i + c] - (w * original.rgba[src + c] + (1 - w) * plain[i + c]))).toBeLessThanOrEqual(0.5 + 1e-9);
        }
      }
    }
    expect(interior).toBe(16 * SIZE);
    // the new area is generated, not the canvas's edge-repeat fill
    let newAreaDiff = 0;
    for (let p = 0; p < SIZE * SIZE; p++) {
      if (p % SIZE >= 16 && p % SIZE < 48) continue;
      for (let c = 0; c < 3; c++) newAreaDiff += Math.abs(out[p * 3 + c] - canvas.initImage.rgba[p * 4 + c]);
    }
    expect(newAreaDiff / (32 * SIZE * 3)).toBeGreaterThan(1);
  });
});

describe('safety checker', () => {
  it('passes a normal image unchanged and reports it checked', async () => {
    const spy: Interceptor = { runs: [] };
    const engine = await engineFor('tiny-sd', spy);
    const checked = await engine.generate(text2img({ safetyChecker: true, steps: 3 }));
    expect(checked.hasSafetyChecker).toBe(true);
    expect(checked.safetyChecked).toBe(true);
    expect(checked.nsfw).toEqual([false]);
    const checker = spy.runs.filter((r) => r.component === 'safety_checker');
    expect(checker).toHaveLength(1);
    expect(checker[0].dims).toEqual({ clip_input: [1, 3, 224, 224], images: [1, 64, 64, 3] });
    const plain = await engine.generate(text2img({ steps: 3 }));
    expect(plain.safetyChecked).toBe(false);
    expect(plain.nsfw).toEqual([]);
    expect(meanAbsDiff(pixels(checked.images[0]), pixels(plain.images[0]))).toBe(0);
  });

  it('blacks out a near-white image it flags, per sample', async () => {
    const spy: Interceptor = { runs: [] };
    whiteDecoder(spy);
    const engine = await engineFor('tiny-sd', spy);
    const r = await engine.generate(text2img({ safetyChecker: true, steps: 2, samples: 2 }));
    expect(r.nsfw).toEqual([true, true]);
    for (const png of r.images) expect(pixels(png).every((v) => v === 0)).toBe(true);
    const unchecked = await engine.generate(text2img({ steps: 2 }));
    expect(pixels(unchecked.images[0]).every((v) => v === 250)).toBe(true);
  });

  it('is absent from tiny-sd-analytic: hasSafetyChecker false, nothing checked even when asked', async () => {
    const spy: Interceptor = { runs: [] };
    const engine = await engineFor('tiny-sd-analytic', spy);
    const r = await engine.generate(text2img({ safetyChecker: true, steps: 2 }));
    expect(r.hasSafetyChecker).toBe(false);
    expect(r.safetyChecked).toBe(false);
    expect(r.nsfw).toEqual([]);
    expect(spy.runs.some((run) => run.component === 'safety_checker')).toBe(false);
  });
});

describe('device loss', () => {
  it('recognises device-lost and out-of-memory messages and nothing else', () => {
    for (const m of ['GPUDevice was lost', 'Device was lost: destroyed', 'WebGPU device lost (reason: unknown)', 'GPUOutOfMemoryError: Out of memory', 'Aborted(OOM)', 'failed to allocate: out of memory']) {
      expect(isDeviceFailure(new Error(m))).toBe(true);
    }
    for (const m of ['input dtype int8 is not supported', 'The job was cancelled', 'bloom filter', 'room']) expect(isDeviceFailure(new Error(m))).toBe(false);
  });

  it('ends the job with a DeviceLostError, drops the sessions, and runs again after loadModel', async () => {
    const spy: Interceptor = { runs: [] };
    let unetRuns = 0;
    spy.before = (name) => {
      if (name === 'unet' && ++unetRuns === 2) throw new Error('[WebGPU] GPUDevice was lost: the device was destroyed');
    };
    const engine = await engineFor('tiny-sd', spy);
    const error = await engine.generate(text2img({ steps: 3 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceLostError);
    expect((error as Error).message).toMatch(/device was lost or ran out of memory.*load it again/i);
    expect(engine.loadedModelId).toBeNull();
    await expect(engine.generate(text2img({ steps: 3 }))).rejects.toThrow(/no model is loaded/);
    await engine.loadModel(source('tiny-sd'));
    const r = await engine.generate(text2img({ steps: 3 }));
    expect(r.images).toHaveLength(1);
  });

  it('leaves the sessions alone for other errors', async () => {
    const spy: Interceptor = { runs: [] };
    let fail = true;
    spy.before = (name) => {
      if (name === 'unet' && fail) {
        fail = false;
        throw new Error('something else broke');
      }
    };
    const engine = await engineFor('tiny-sd', spy);
    await expect(engine.generate(text2img({ steps: 2 }))).rejects.toThrow(/something else broke/);
    expect(engine.loadedModelId).toBe('tiny-sd');
    expect((await engine.generate(text2img({ steps: 2 }))).images).toHaveLength(1);
  });
});
