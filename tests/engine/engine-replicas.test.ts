/**
 * Every catalogue model, as a tiny replica of its real repository (tools/tiny-models/replicas.ts:
 * the real file names, graph I/O, fixed dims, fp16 internals, MatMulNBits, shards), loaded by the
 * engine under onnxruntime-node from the URLs the catalogue names: what its graphs allow equals
 * what the catalogue declares (so refusals before download are right), and every mode it declares
 * runs and gives an image of the declared size.
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
import { readGraphInfo } from '../../src/models/onnx-graph.ts';
import { REAL_MODELS } from '../../src/models/real-models.ts';
import { buildReplicas, type RepoFiles } from '../../tools/tiny-models/replicas.ts';

let repos: Record<string, RepoFiles>;
beforeAll(async () => {
  repos = await buildReplicas();
}, 120_000);

/** The hub as the catalogue's URLs see it, answered from the replicas. */
const hubFetch: typeof fetch = async (input) => {
  const m = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(String(input));
  const bytes = m ? repos[m[1]]?.[decodeURIComponent(m[2])] : undefined;
  return bytes ? new Response(bytes as Uint8Array<ArrayBuffer>) : new Response('Entry not found', { status: 404 });
};

let storeCount = 0;
const engine = () => new Engine(ortNode as unknown as OrtModule, new ModelStore({ fetch: hubFetch, store: createStore(`replicas-${storeCount++}`, 'files'), storage: null }), { backend: 'cpu', reason: 'test', shaderF16: false });

describe('the replicas have the real layouts', () => {
  it('names, shards, I/O types and fixed dims as the real exports', () => {
    const cy = repos['Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard'];
    expect(Object.keys(cy).filter((p) => p.startsWith('unet/')).sort()).toEqual(['unet/model.onnx', 'unet/model.onnx_data', 'unet/model.onnx_data_1', 'unet/model.onnx_data_2']);
    expect(readGraphInfo(cy['unet/model.onnx']).externalData).toEqual(['model.onnx_data', 'model.onnx_data_1', 'model.onnx_data_2']);
    const q4 = readGraphInfo(repos['d0gr/sdxl-lightning-onnx-webgpu-int4']['unet/model_q4.onnx']);
    expect(q4.opTypes).toContain('MatMulNBits');
    expect(q4.domains).toContain('com.microsoft');
    expect(q4.externalData).toEqual(['model_q4.onnx_data']);
    expect(q4.inputs.find((i) => i.name === 'timestep')).toEqual({ name: 'timestep', type: 'int64', dims: [1] });
    const webnn = readGraphInfo(repos['microsoft/stable-diffusion-v1.5-webnn']['sd-unet-v1.5-model-b2c4h64w64s77-float16-compute-and-inputs-layernorm.onnx']);
    expect(webnn.inputs.map((i) => [i.name, i.type, i.dims])).toEqual([
      ['sample', 'float16', [2, 4, 64, 64]], ['timestep', 'int64', [2]], ['encoder_hidden_states', 'float16', [2, 77, 32]],
    ]);
    const turbo = readGraphInfo(repos['microsoft/sd-turbo-webnn']['unet/model_layernorm.onnx']);
    expect(turbo.inputs.find((i) => i.name === 'timestep')).toEqual({ name: 'timestep', type: 'float16', dims: [1] });
    // fp16 internals behind float32 I/O: the graph's weights are float16, its inputs float32
    const ort16 = readGraphInfo(repos['schmuell/sd-turbo-ort-web']['unet/model.onnx']);
    expect(ort16.inputs.find((i) => i.name === 'sample')?.type).toBe('float32');
  });
});

const SIZE = 64;
const grey = (w: number, h: number): RgbaImage => ({ rgba: new Uint8Array(w * h * 4).fill(150), width: w, height: h });

describe.each(REAL_MODELS.map((m) => [m.id, m] as const))('catalogue model %s, from its replica', (_id, entry) => {
  it('is what the catalogue says, and runs each mode it declares', async () => {
    const e = engine();
    const info = await e.loadModel(entry.source);
    expect(info.family).toBe(entry.family);
    expect(info.limits).toEqual(entry.limits);
    const size = entry.limits!.fixedSize ?? { width: SIZE, height: SIZE };
    const base = {
      prompt: 'a cat sitting on a bench', negativePrompt: '', width: size.width, height: size.height, samples: 1, steps: 2,
      guidanceScale: entry.defaults!.guidanceScale, seed: 3, schedulerOverrides: {}, safetyChecker: false,
    };
    const jobs: GenerationJob[] = [{ mode: 'text2img', ...base }];
    if (entry.limits!.modes.img2img === true) jobs.push({ mode: 'img2img', ...base, strength: 0.6, initImage: grey(size.width, size.height) });
    for (const job of jobs) {
      const r = await e.generate(job);
      expect(decode(r.images[0]), `${entry.id} ${job.mode}`).toMatchObject({ width: size.width, height: size.height });
    }
  }, 240_000);
});

describe('a batch-2 export without guidance', () => {
  it('fills its batch: an unguided request on the SD 1.5 WebNN replica runs', async () => {
    const entry = REAL_MODELS.find((m) => m.id === 'sd-1.5-webnn')!;
    const e = engine();
    await e.loadModel(entry.source);
    const r = await e.generate({ mode: 'text2img', prompt: 'a cat', negativePrompt: '', width: 512, height: 512, samples: 1, steps: 1, guidanceScale: 0, seed: 1, schedulerOverrides: {}, safetyChecker: false });
    expect(r.images).toHaveLength(1);
  }, 240_000);
});

describe('the layouts on WebGPU (onnxruntime-node on SwiftShader)', async () => {
  const { nodeWebgpuUnavailableReason } = await import('../../tools/node-webgpu.ts');
  const unavailable = await nodeWebgpuUnavailableReason();
  let built: ReturnType<typeof buildReplicas> | null = null;
  // SwiftShader has no shader-f16, so the fp16 exports themselves run on WASM there (the browser test checks
  // the engine says so); with float32 internals the same layouts (float32 I/O, shards, MatMulNBits) run on the GPU.
  it.skipIf(unavailable !== null).each(['sdxl-lightning-fp16', 'sdxl-lightning-int4', 'sd-turbo'])('%s: sharded, quantized and fixed layouts run on WebGPU', async (id) => {
    const fp32 = await (built ??= buildReplicas({ fp16Internals: false }));
    const entry = REAL_MODELS.find((m) => m.id === id)!;
    const fetch32: typeof fetch = async (input) => {
      const m = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(String(input));
      const bytes = m ? fp32[m[1]]?.[decodeURIComponent(m[2])] : undefined;
      return bytes ? new Response(bytes as Uint8Array<ArrayBuffer>) : new Response('Entry not found', { status: 404 });
    };
    const e = new Engine(ortNode as unknown as OrtModule, new ModelStore({ fetch: fetch32, store: createStore(`replicas-gpu-${storeCount++}`, 'files'), storage: null }), { backend: 'webgpu', reason: 'test', shaderF16: false });
    const info = await e.loadModel(entry.source);
    expect(info.backend).toBe('webgpu');
    const r = await e.generate({ mode: 'text2img', prompt: 'a cat', negativePrompt: '', width: 64, height: 64, samples: 1, steps: 1, guidanceScale: 0, seed: 2, schedulerOverrides: {}, safetyChecker: false });
    expect(decode(r.images[0])).toMatchObject({ width: 64, height: 64 });
  }, 300_000);
});
