/**
 * The SDXL family through the whole engine under onnxruntime-node, on the tiny SDXL set (two
 * text encoders and tokenizers, a UNet with text_embeds and time_ids): the descriptor says SDXL,
 * every mode runs, the UNet receives the five inputs with the request's size in time_ids, guidance
 * doubles the batch, and a seed reproduces its image.
 */
import 'fake-indexeddb/auto';
import { createStore } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { decode } from 'fast-png';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import type { GenerationJob, RgbaImage } from '../../src/engine/jobs.ts';
import type { OrtModule } from '../../src/engine/runtime.ts';
import { ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { sdxlSetFiles } from '../../tools/tiny-models/sdxl-set.ts';

type Feeds = Record<string, ortNode.Tensor>;

/** onnxruntime-node whose UNet runs record their feeds' dims and time_ids. */
function recordingOrt(runs: { dims: Record<string, readonly number[]>; timeIds: number[] }[]): OrtModule {
  const create = async (...args: Parameters<typeof ortNode.InferenceSession.create>) => {
    const session = await ortNode.InferenceSession.create(...args);
    if (!session.inputNames.includes('time_ids')) return session;
    return new Proxy(session, {
      get(target, prop) {
        if (prop === 'run') {
          return async (feeds: Feeds) => {
            runs.push({ dims: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])), timeIds: Array.from(feeds.time_ids.data as Float32Array) });
            return target.run(feeds);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return { ...ortNode, InferenceSession: { ...ortNode.InferenceSession, create } } as unknown as OrtModule;
}

let files: Map<string, Uint8Array>;
let source: ModelSource;
beforeAll(() => {
  files = new Map(sdxlSetFiles().map((f) => [f.path, f.bytes]));
  source = { id: 'tiny-sdxl', baseUrl: 'http://models.test/tiny-sdxl/', files: [...files.keys()].map((path) => ({ path })) };
});

const fileFetch: typeof fetch = async (input) => {
  const path = decodeURIComponent(new URL(String(input)).pathname).replace(/^\/tiny-sdxl\//, '');
  const bytes = files.get(path);
  return bytes ? new Response(bytes as Uint8Array<ArrayBuffer>) : new Response('missing', { status: 404 });
};

let storeCount = 0;
async function engine(runs: Parameters<typeof recordingOrt>[0] = []): Promise<Engine> {
  const e = new Engine(recordingOrt(runs), new ModelStore({ fetch: fileFetch, store: createStore(`sdxl-${storeCount++}`, 'files'), storage: null }), { backend: 'cpu', reason: 'test', shaderF16: false });
  await e.loadModel(source);
  return e;
}

const SIZE = 64;
const base = { prompt: 'a cat sitting on a bench', negativePrompt: '', width: SIZE, height: SIZE, samples: 1, steps: 2, guidanceScale: 0, seed: 7, schedulerOverrides: {}, safetyChecker: false };
const image = (): RgbaImage => ({ rgba: new Uint8Array(SIZE * SIZE * 4).fill(180), width: SIZE, height: SIZE });
const pixels = (png: Uint8Array) => decode(png).data as Uint8Array;

describe('the SDXL family in the engine', () => {
  it('is described as SDXL with every mode, and runs text2img with the five UNet inputs', async () => {
    const runs: Parameters<typeof recordingOrt>[0] = [];
    const e = await engine(runs);
    const info = await e.loadModel(source);
    expect(info.family).toBe('stable-diffusion-xl');
    expect(info.limits).toEqual({ modes: { text2img: true, img2img: true, inpaint: true }, fixedSize: null });
    const result = await e.generate({ mode: 'text2img', ...base, width: 64, height: 96 });
    expect(result.images).toHaveLength(1);
    expect(decode(result.images[0])).toMatchObject({ width: 64, height: 96 });
    expect(runs).toHaveLength(2);
    expect(runs[0].dims).toEqual({ sample: [1, 4, 12, 8], timestep: [1], encoder_hidden_states: [1, 77, 80], text_embeds: [1, 48], time_ids: [1, 6] });
    // (height, width) order, as diffusers' original_size and target_size
    expect(runs[0].timeIds).toEqual([96, 64, 0, 0, 96, 64]);
    expect(pixels(result.images[0]).every((v, i) => i % 4 === 3 || Number.isFinite(v))).toBe(true);
  });

  it('guidance runs the negative and the prompt as one batch-2 call; a seed reproduces its image', async () => {
    const runs: Parameters<typeof recordingOrt>[0] = [];
    const e = await engine(runs);
    const guided: GenerationJob = { mode: 'text2img', ...base, guidanceScale: 5 };
    const first = await e.generate(guided);
    expect(runs[0].dims.sample).toEqual([2, 4, 8, 8]);
    expect(runs[0].dims.time_ids).toEqual([2, 6]);
    const again = await e.generate(guided);
    expect(Buffer.from(again.images[0]).equals(Buffer.from(first.images[0]))).toBe(true);
    const unguided = await e.generate({ ...guided, guidanceScale: 0 });
    expect(Buffer.from(unguided.images[0]).equals(Buffer.from(first.images[0]))).toBe(false);
  });

  it('img2img and inpaint run on the SDXL UNet', async () => {
    const e = await engine();
    const img = await e.generate({ mode: 'img2img', ...base, strength: 0.5, initImage: image() });
    expect(img.images).toHaveLength(1);
    const mask: RgbaImage = { rgba: new Uint8Array(SIZE * SIZE * 4).fill(255), width: SIZE, height: SIZE };
    const inp = await e.generate({ mode: 'inpaint', ...base, strength: 1, initImage: image(), maskImage: mask });
    expect(inp.images).toHaveLength(1);
  });
});
