// Live previews: the linear latent-to-RGB approximation, the budget that keeps previews cheap,
// TAESD's decoder converted from madebyollin's safetensors (checked against a torch run of
// taesd.py's Decoder), and the engine sending previews with its denoise progress.
import 'fake-indexeddb/auto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import type { EngineProgress, Text2ImgJob } from '../../src/engine/jobs.ts';
import { LivePreview, linearPreview, planarToRgba, SD_LATENT_RGB, TaesdDecoder } from '../../src/engine/preview.ts';
import { createModelSession, type ModelSession, type OrtModule } from '../../src/engine/runtime.ts';
import { ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { generateTinyModels } from '../../tools/generate-tiny-models.ts';
import { convertTaesdDecoder, generateTaesd, TAESD_FIXTURE } from '../../tools/taesd.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ort = ortNode as unknown as OrtModule;
// The real TAESD weights live outside the project (read-only fixtures); without them the TAESD
// tests are skipped and the app runs on the linear preview.
const HAS_TAESD = existsSync(TAESD_FIXTURE);

describe('linear preview', () => {
  it('applies the SD 1.x factors per latent pixel and maps [-1, 1] to [0, 255]', () => {
    // 2 latent pixels: one-hot channel 0 at pixel 0, channel 3 = 2 at pixel 1
    const latents = new Float32Array(4 * 2);
    latents[0] = 1;
    latents[3 * 2 + 1] = 2;
    const { rgba, width, height } = linearPreview(latents, [1, 4, 1, 2]);
    expect([width, height]).toEqual([2, 1]);
    const expected = (v: number) => Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
    expect([...rgba.slice(0, 4)]).toEqual([...SD_LATENT_RGB[0].map(expected), 255]);
    expect([...rgba.slice(4, 8)]).toEqual([...SD_LATENT_RGB[3].map((f) => expected(2 * f)), 255]);
  });

  it('gives mid-grey for zero latents and clamps large ones', () => {
    const grey = linearPreview(new Float32Array(4 * 9), [1, 4, 3, 3], 2);
    expect([grey.width, grey.height]).toEqual([6, 6]);
    for (let i = 0; i < grey.rgba.length; i += 4) expect([...grey.rgba.slice(i, i + 4)]).toEqual([128, 128, 128, 255]);
    const big = linearPreview(new Float32Array(4).fill(100), [1, 4, 1, 1]);
    // channel sums of the factors: R 0.143, G 0.411, B 0.172, all positive -> clamped to white
    expect([...big.rgba]).toEqual([255, 255, 255, 255]);
  });

  it('upscales bilinearly with pixel centres aligned', () => {
    // one channel-0 ramp of 2 latent pixels: R goes from 0.5 (latent 0) to (1 + 0.298) / 2 (latent 1)
    const latents = new Float32Array(8);
    latents[1] = 1;
    const { rgba, width } = linearPreview(latents, [1, 4, 1, 2], 4);
    expect(width).toBe(8);
    const r = Array.from({ length: 8 }, (_, x) => rgba[x * 4]);
    const lo = 0.5 * 255;
    const hi = ((1 + 0.298) / 2) * 255;
    // x = 0, 1 sit at or left of the first centre (clamped), 6, 7 right of the last
    expect(r[0]).toBe(Math.round(lo));
    expect(r[1]).toBe(Math.round(lo));
    expect(r[6]).toBe(Math.round(hi));
    expect(r[7]).toBe(Math.round(hi));
    // x = 3 samples at 0.375 between the centres
    expect(r[3]).toBe(Math.round(lo + 0.375 * (hi - lo)));
    expect(r).toEqual([...r].sort((a, b) => a - b));
  });

});

/** A TAESD stand-in: decoding 8x8 latents costs `cost` seconds of the fake clock, others in proportion. */
function fakeTaesd(clock: { t: number }, cost: number): TaesdDecoder {
  const session = {
    inputs: [{ name: 'latent_sample' }],
    outputs: [{ name: 'sample' }],
    async run(feeds: Record<string, { data: Float32Array; dims: number[] }>) {
      const [, , h, w] = feeds.latent_sample.dims;
      clock.t += (cost * h * w) / 64;
      return { sample: { data: new Float32Array(3 * 64 * h * w).fill(0.5), dims: [1, 3, 8 * h, 8 * w] } };
    },
  };
  return new TaesdDecoder(session as unknown as ModelSession, () => clock.t);
}

async function runSteps(live: LivePreview, steps: number, stepSeconds: number, clock: { t: number }, dims = [1, 4, 8, 8]) {
  const made: { step: number; decoder: string; width: number }[] = [];
  const latents = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let step = 1; step <= steps; step++) {
    clock.t += stepSeconds;
    const p = await live.afterStep(step, steps, stepSeconds, latents, dims);
    if (p) made.push({ step, decoder: p.decoder, width: p.width });
  }
  return made;
}

describe('preview budget', () => {
  it('runs the linear preview every step when it is cheap, never after the last step', async () => {
    const clock = { t: 0 };
    const live = new LivePreview(null, { now: () => clock.t });
    const made = await runSteps(live, 6, 0.5, clock);
    expect(made.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    expect(made.every((m) => m.decoder === 'linear' && m.width === 8)).toBe(true);
  });

  it('asks the GPU loop for latents at most four times a second, and every step when steps are slow', async () => {
    const ask = async (stepSeconds: number, steps: number) => {
      const clock = { t: 0 };
      const live = new LivePreview(null, { now: () => clock.t });
      const latents = new Float32Array(4 * 8 * 8);
      const read: number[] = [];
      for (let step = 1; step <= steps; step++) {
        const wanted = live.wants(step, steps);
        clock.t += stepSeconds;
        if (wanted) read.push(step);
        const preview = await live.afterStep(step, steps, stepSeconds, wanted ? latents : null, [1, 4, 8, 8]);
        // latents fetched for a preview are always shown: a read-back with no preview would be waste
        expect(preview !== null, `step ${step}`).toBe(wanted);
      }
      return read;
    };
    // 62.5 ms steps (exact in binary): one read-back every 4 steps (0.25 s), never on the last step (the result reads it anyway)
    expect(await ask(0.0625, 20)).toEqual([1, 5, 9, 13, 17]);
    expect(await ask(0.5, 6)).toEqual([1, 2, 3, 4, 5]);
  });

  it('runs TAESD every few steps when it fits 10 % of the step time, and keeps to it', async () => {
    const clock = { t: 0 };
    // a step of 1 s, a TAESD decode of 0.25 s: every 3rd step at most
    const live = new LivePreview(fakeTaesd(clock, 0.25), { now: () => clock.t });
    const made = await runSteps(live, 20, 1, clock);
    expect(made.length).toBeGreaterThanOrEqual(5);
    // the first step's preview is the linear one: the decoder is chosen at the steps' steady pace
    expect(made[0]).toEqual({ step: 1, decoder: 'linear', width: 8 });
    expect(made.slice(1).every((m) => m.decoder === 'taesd' && m.width === 64)).toBe(true);
    for (let i = 1; i < made.length; i++) expect(made[i].step - made[i - 1].step).toBeLessThanOrEqual(4);
    expect(live.overhead).toBeLessThanOrEqual(0.1);
  });

  it('falls back to the linear preview when TAESD would be rarer than every 4 steps', async () => {
    const clock = { t: 0 };
    const live = new LivePreview(fakeTaesd(clock, 2), { now: () => clock.t });
    const made = await runSteps(live, 10, 1, clock);
    expect(live.decoder).toBe('linear');
    expect(made.length).toBe(9);
  });

  it("chooses the decoder without the first step's one-off costs (a GPU compiling the UNet's shaders)", async () => {
    // step 1 takes 20 s, the rest 50 ms: at step 1's pace TAESD (0.5 s) would look affordable and then
    // block every later preview; at the steady pace it does not fit, and the linear preview runs each step
    const clock = { t: 0 };
    const taesd = fakeTaesd(clock, 0.5);
    const live = new LivePreview(taesd, { now: () => clock.t });
    const latents = new Float32Array(4 * 8 * 8);
    const made: number[] = [];
    for (let step = 1; step <= 6; step++) {
      const seconds = step === 1 ? 20 : 0.05;
      clock.t += seconds;
      if (await live.afterStep(step, 6, seconds, latents, [1, 4, 8, 8])) made.push(step);
    }
    expect(live.decoder).toBe('linear');
    expect(made).toEqual([1, 2, 3, 4, 5]);
  });

  it('does not even calibrate TAESD when steps are a few milliseconds', async () => {
    const clock = { t: 0 };
    const taesd = fakeTaesd(clock, 0.001);
    const live = new LivePreview(taesd, { now: () => clock.t });
    await runSteps(live, 5, 0.002, clock);
    expect(live.decoder).toBe('linear');
    expect(taesd.calibrated).toBe(false);
  });

  it('turns planar [0, 1] RGB into RGBA bytes', () => {
    const rgb = Float32Array.of(0, 1, 0.5, 0.25, 1, 0);
    expect([...planarToRgba(rgb, 2, 1)]).toEqual([0, 128, 255, 255, 255, 64, 0, 255]);
  });
});

// Reference: torch 1.13 (float32, CPU) running madebyollin's taesd.py Decoder on the same bf16
// weights, output clamped to [0, 1]. pattern(c, y, x) = 2 * sin(0.7 * (c + 1) * x + 0.3 * y + c).
const TORCH = {
  zeros: {
    dims: [1, 4, 4, 4],
    mean: 0.43355369567871094,
    min: 0.2842142581939697,
    max: 0.5797408819198608,
    channelMeans: [0.536270260810852, 0.43006134033203125, 0.3343295753002167],
    at: [[0, 0, 0, 0.4928351044654846], [1, 5, 7, 0.4500765800476074], [2, 17, 11, 0.3243770897388458], [0, 31, 30, 0.5742372274398804], [1, 16, 3, 0.4263220429420471], [2, 9, 29, 0.34322792291641235], [0, 24, 13, 0.5330514907836914]],
  },
  pattern: {
    dims: [1, 4, 4, 6],
    mean: 0.5815145373344421,
    min: 0,
    max: 1,
    channelMeans: [0.4651428163051605, 0.5997260212898254, 0.6796746253967285],
    at: [[0, 0, 0, 0.42635107040405273], [1, 5, 7, 0.7883585691452026], [2, 17, 11, 0.4510698914527893], [0, 31, 30, 0.34782642126083374], [1, 16, 40, 0.5974020957946777], [2, 9, 29, 0.9415386319160461], [0, 24, 13, 0.8378689289093018]],
  },
};

function latentFor(name: keyof typeof TORCH): Float32Array {
  const [, c, h, w] = TORCH[name].dims;
  const out = new Float32Array(c * h * w);
  if (name === 'pattern') {
    for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[(k * h + y) * w + x] = 2 * Math.sin(0.7 * (k + 1) * x + 0.3 * y + k);
  }
  return out;
}

// Skipped only when ../shared/fixtures/taesd is absent: the conversion needs TAESD's trained weights.
describe.skipIf(!HAS_TAESD)('TAESD decoder conversion', () => {
  let session: ModelSession;
  beforeAll(async () => {
    session = await createModelSession('taesd', await convertTaesdDecoder(), { ort, backend: 'cpu' });
  });

  for (const name of ['zeros', 'pattern'] as const) {
    it(`matches torch's taesd.py Decoder on ${name} latents`, async () => {
      const ref = TORCH[name];
      const out = (await session.run({ latent_sample: { data: latentFor(name), dims: ref.dims } })).sample;
      const [, , h, w] = ref.dims;
      expect(out.dims).toEqual([1, 3, 8 * h, 8 * w]);
      const data = out.data as Float32Array;
      const plane = 64 * h * w;
      let min = Infinity;
      let max = -Infinity;
      let sum = 0;
      for (const v of data) {
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += v;
      }
      expect(min).toBeGreaterThanOrEqual(0);
      expect(max).toBeLessThanOrEqual(1);
      expect(min).toBeCloseTo(ref.min, 4);
      expect(max).toBeCloseTo(ref.max, 4);
      expect(sum / data.length).toBeCloseTo(ref.mean, 4);
      for (let c = 0; c < 3; c++) {
        const m = data.subarray(c * plane, (c + 1) * plane).reduce((a, b) => a + b, 0) / plane;
        expect(m).toBeCloseTo(ref.channelMeans[c], 4);
      }
      for (const [c, y, x, v] of ref.at) expect(Math.abs(data[c * plane + y * 8 * w + x] - v)).toBeLessThan(1e-4);
    });
  }

  it('decodes zero latents to a mid-grey, slightly warm image through TaesdDecoder', async () => {
    const { rgba, width, height } = await new TaesdDecoder(session).decode(new Float32Array(4 * 16), [1, 4, 4, 4]);
    expect([width, height]).toEqual([32, 32]);
    const mean = [0, 1, 2].map((c) => {
      let s = 0;
      for (let i = c; i < rgba.length; i += 4) s += rgba[i];
      return s / (rgba.length / 4) / 255;
    });
    TORCH.zeros.channelMeans.forEach((m, c) => expect(Math.abs(mean[c] - m)).toBeLessThan(0.003));
  });
});

describe('engine previews', () => {
  let dir: string;
  let manifest: Record<string, { files: ModelSource['files'] }>;
  const fileFetch: typeof fetch = async (input) => new Response(readFileSync(path.join(dir, decodeURIComponent(new URL(String(input)).pathname))));
  const source = (id: string): ModelSource => ({ id, baseUrl: `http://models.test/${id}/`, files: manifest[id].files });
  let stores = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'preview-'));
    await generateTinyModels(dir);
    await generateTaesd(dir);
    manifest = JSON.parse(readFileSync(path.join(dir, 'models.json'), 'utf8')) as typeof manifest;
  }, 120_000);

  const job: Text2ImgJob = {
    mode: 'text2img', prompt: 'a cat', negativePrompt: '', width: 64, height: 64, samples: 1, steps: 6,
    guidanceScale: 7.5, seed: 7, schedulerOverrides: {}, safetyChecker: false,
  };

  async function run(withTaesd: boolean) {
    const engine = new Engine(ort, new ModelStore({ fetch: fileFetch, store: createStore(`preview-${stores++}`, 'files') }), {
      backend: 'cpu', reason: 'test', shaderF16: false,
    });
    if (withTaesd) engine.setPreviewModel(source('taesd'));
    await engine.loadModel(source('tiny-sd'));
    const events: Extract<EngineProgress, { phase: 'denoise' }>[] = [];
    const result = await engine.generate(job, (p) => {
      if (p.phase === 'denoise') events.push(p);
    });
    return { events, result };
  }

  it('sends previews with the denoise steps (not after the last) and they do not change the image', async () => {
    const plain = await run(false);
    const previews = plain.events.filter((e) => e.preview);
    expect(previews.length).toBeGreaterThanOrEqual(3);
    expect(plain.events.at(-1)?.preview).toBeUndefined();
    for (const e of previews) {
      expect(e.preview!.decoder).toBe('linear');
      expect(e.preview!.rgba.length).toBe(e.preview!.width * e.preview!.height * 4);
      expect(e.preview!.width).toBe(8); // latent resolution: the page upscales
    }
    // the previews follow the latents: consecutive ones differ
    expect(Buffer.from(previews[0].preview!.rgba).equals(Buffer.from(previews[1].preview!.rgba))).toBe(false);
    if (HAS_TAESD) {
      // tiny-sd's steps take milliseconds, so TAESD is loaded but its budget says linear
      const withTaesd = await run(true);
      expect(withTaesd.result.images).toEqual(plain.result.images);
      expect(withTaesd.events.filter((e) => e.preview).length).toBeGreaterThan(0);
    }
  }, 120_000);
});

describe('the catalogue and TAESD', () => {
  it('keeps "taesd" and "esrgan" out of the generation models and hands them over as the preview decoder and the upscaler', async () => {
    const { loadGeneratedModels, loadGeneratedCatalogue } = await import('../../src/models/catalogue.ts');
    const manifest = {
      'tiny-sd': { files: [{ path: 'unet/model.onnx', size: 1 }] },
      taesd: { files: [{ path: 'decoder.onnx', size: 2, sha256: 'ab' }] },
      esrgan: { files: [{ path: 'x2.onnx', size: 3, sha256: 'cd' }] },
    };
    const fetchFn = (async () => new Response(JSON.stringify(manifest))) as typeof fetch;
    const { models, previewDecoder, upscaler } = await loadGeneratedModels('http://app.test/models/models.json', fetchFn);
    expect(models.map((m) => m.id)).toEqual(['tiny-sd']);
    expect(previewDecoder).toEqual({ id: 'taesd', baseUrl: 'http://app.test/models/taesd/', files: manifest.taesd.files });
    expect(upscaler).toEqual({ id: 'esrgan', baseUrl: 'http://app.test/models/esrgan/', files: manifest.esrgan.files });
    expect((await loadGeneratedCatalogue('http://app.test/models/models.json', fetchFn)).map((m) => m.id)).toEqual(['tiny-sd']);
    const without = await loadGeneratedModels('http://app.test/models/models.json', (async () => new Response(JSON.stringify({ 'tiny-sd': manifest['tiny-sd'] }))) as typeof fetch);
    expect(without.previewDecoder).toBeNull();
    expect(without.upscaler).toBeNull();
  });
});
