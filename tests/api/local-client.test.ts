import { encode } from 'fast-png';
import { describe, expect, it, vi } from 'vitest';
import { LocalClient, type LocalClientOptions } from '../../src/api/local-client.ts';
import type { GenerationResponse as ApiResponse, ErrorResponse, SuccessResponse } from '../../src/api/responses.ts';
import { ENHANCE_SUFFIX } from '../../src/api/validate-request.ts';
import type { LoadedModelInfo } from '../../src/engine/engine.ts';
import type { EngineProgress, GenerationResult, ProgressSink } from '../../src/engine/jobs.ts';
import type { BackendChoice } from '../../src/engine/runtime.ts';
import type { EngineGenerationApi, ImageEditJob, ImageEditResult, WorkerJob, WorkerOutcome } from '../../src/engine/worker-api.ts';

type WorkerImg2ImgJob = Extract<WorkerJob, { mode: 'img2img' }>;
import type { CatalogueEntry } from '../../src/models/catalogue.ts';
import { ANY_REQUEST } from '../../src/models/model-descriptor.ts';
import type { ModelSource } from '../../src/models/model-source.ts';

const INIT_URL = 'https://raw.githubusercontent.com/CompVis/stable-diffusion/main/data/inpainting_examples/overture-creations-5sI6fQgYIuo.png';
const INIT_PNG = encode({ width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(200) });

/** The seed document's example request (API.md). */
const SEED_EXAMPLE = {
  key: '', prompt: 'a cat sitting on a bench', negative_prompt: null, init_image: INIT_URL,
  width: '512', height: '512', samples: '1', num_inference_steps: '30', safety_checker: 'no', enhance_prompt: 'yes',
  guidance_scale: 7.5, strength: 0.7, seed: null, webhook: null, track_id: null,
};

const BACKEND: BackendChoice = { backend: 'wasm', reason: 'no WebGPU adapter in tests', shaderF16: false };

function entry(id: string): CatalogueEntry {
  return { id, name: id, description: `${id} for tests`, source: { id, baseUrl: `https://models.example/${id}/`, files: [] } };
}
const MODELS = [entry('tiny-sd'), entry('tiny-sd-analytic')];

/** A distinct small PNG per (seed, sample), so outputs can be told apart. */
function outputPng(seed: number): Uint8Array {
  return encode({ width: 1, height: 1, channels: 4, data: new Uint8Array([seed & 255, (seed >>> 8) & 255, 7, 255]) });
}

interface EngineEvent {
  what: 'start' | 'end';
  prompt: string;
}

/** An EngineGenerationApi that records its calls and answers as told. */
class FakeEngine implements EngineGenerationApi {
  readonly loads: ModelSource[] = [];
  readonly jobs: WorkerImg2ImgJob[] = [];
  readonly progressSinks: (ProgressSink | undefined)[] = [];
  readonly events: EngineEvent[] = [];
  cancels = 0;
  /** Per-call answer of loadModel; the default loads the model. */
  loadOutcome: (source: ModelSource) => WorkerOutcome<LoadedModelInfo> = (source) => ({
    ok: true,
    value: { id: source.id, backend: 'wasm', backendReason: 'tests run on wasm', schedulerClass: 'PNDMScheduler', inputTypes: {},
      deviceLoop: 'WASM runs on the CPU', loadTimings: { readSeconds: 0, createSeconds: 0, largestFileBytes: 0 }, limits: ANY_REQUEST, family: 'stable-diffusion' },
  });
  /** Milliseconds each img2img call takes, by prompt (0 when absent). */
  delays = new Map<string, number>();
  /** Per-call answer of img2img; the default renders one PNG per sample. */
  outcome: (job: WorkerImg2ImgJob) => WorkerOutcome<GenerationResult> = (job) => ({
    ok: true,
    value: {
      images: Array.from({ length: job.samples }, (_, i) => outputPng(job.seed + i)),
      seeds: Array.from({ length: job.samples }, (_, i) => job.seed + i),
      width: job.width,
      height: job.height,
      scheduler: job.scheduler ?? 'PNDMScheduler',
      promptTruncated: false,
      safetyChecked: false,
      nsfw: [],
      hasSafetyChecker: false,
      timings: { total: 0.5, denoise: 0.42, stepsRun: 21 },
    },
  });

  async init(): Promise<BackendChoice> {
    return BACKEND;
  }

  /** Like the real engine: a load first drops the model it had, so a failed load leaves none. */
  loaded: string | null = null;

  async loadModel(source: ModelSource, onProgress?: (p: EngineProgress) => void): Promise<WorkerOutcome<LoadedModelInfo>> {
    this.loads.push(source);
    this.loaded = null;
    onProgress?.({ phase: 'load', modelId: source.id, message: 'loading' });
    const outcome = this.loadOutcome(source);
    if (outcome.ok) this.loaded = source.id;
    return outcome;
  }

  async generate(workerJob: WorkerJob, onProgress?: ProgressSink): Promise<WorkerOutcome<GenerationResult>> {
    if (!this.loaded) return { ok: false, kind: 'engine', message: 'no model is loaded' };
    if (workerJob.mode !== 'img2img') throw new Error('these tests send img2img jobs');
    const job = workerJob;
    this.jobs.push(job);
    this.progressSinks.push(onProgress);
    this.events.push({ what: 'start', prompt: job.prompt });
    onProgress?.({ phase: 'denoise', sample: 0, samples: job.samples, step: 1, totalSteps: job.steps });
    await new Promise((resolve) => setTimeout(resolve, this.delays.get(job.prompt) ?? 0));
    this.events.push({ what: 'end', prompt: job.prompt });
    return this.outcome(job);
  }

  readonly edits: ImageEditJob[] = [];
  /** Tiles each upscale reports (one progress event each). */
  upscaleTiles = 2;
  /** While set, an upscale waits for it before its first tile. */
  upscaleHold: Promise<void> | null = null;

  async editImage(job: ImageEditJob, onProgress?: ProgressSink): Promise<WorkerOutcome<ImageEditResult>> {
    this.edits.push(job);
    await this.upscaleHold;
    const factor = job.kind === 'upscale' ? job.scale : 1;
    for (let tile = 1; job.kind === 'upscale' && tile <= this.upscaleTiles; tile++) {
      if ((await onProgress?.({ phase: 'upscale', tile, tiles: this.upscaleTiles })) === true) return { ok: false, kind: 'cancelled', message: 'cancelled' };
    }
    return {
      ok: true,
      value: { png: outputPng(100 + factor), width: 2 * factor, height: 2 * factor, inputWidth: 2, inputHeight: 2, seconds: 0.01, returnedImage: job.image },
    };
  }

  cancel(): void {
    this.cancels++;
  }
}

/** A fetch that serves INIT_PNG for every URL and records what it was asked for. */
function imageFetch() {
  return vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => new Response(INIT_PNG.slice(), { headers: { 'content-type': 'image/png' } }));
}

function setup(overrides: Partial<LocalClientOptions> = {}) {
  const engine = new FakeEngine();
  const fetchFn = imageFetch();
  const urls: { png: Uint8Array; base64: boolean }[] = [];
  const toUrl = (png: Uint8Array, base64: boolean) => {
    urls.push({ png, base64 });
    return `https://out.example/${urls.length}.png`;
  };
  const client = new LocalClient({ engine, backend: BACKEND, models: MODELS, defaultModelId: 'tiny-sd', fetch: fetchFn, toUrl, ...overrides });
  return { client, engine, fetchFn, urls };
}

function success(r: ApiResponse): SuccessResponse {
  if (r.status !== 'success') throw new Error(`expected success, got ${JSON.stringify(r)}`);
  return r;
}

function failure(r: ApiResponse): ErrorResponse {
  if (r.status !== 'error') throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r;
}

const request = (patch: Record<string, unknown> = {}) => ({ prompt: 'a cat', init_image: INIT_URL, ...patch });

describe('LocalClient.img2img: success', () => {
  it('runs the seed document example and answers in the API shape', async () => {
    const { client, engine, fetchFn, urls } = setup();
    const r = success(await client.img2img(structuredClone(SEED_EXAMPLE)));
    expect(r.id).toBe(1);
    expect(typeof r.generationTime).toBe('number');
    expect(r.generationTime).toBeGreaterThanOrEqual(0);
    expect(r.output).toEqual(['https://out.example/1.png']);
    expect(urls).toHaveLength(1);
    expect(urls[0].base64).toBe(false);
    expect(urls[0].png).toEqual(outputPng(engine.jobs[0].seed));

    expect(engine.loads.map((s) => s.id)).toEqual(['tiny-sd']);
    expect(fetchFn).toHaveBeenCalledTimes(1);
    expect(fetchFn.mock.calls[0][0]).toBe(INIT_URL);
    expect(engine.jobs).toHaveLength(1);
    const job = engine.jobs[0];
    expect(job).toMatchObject({
      mode: 'img2img', prompt: 'a cat sitting on a bench' + ENHANCE_SUFFIX, negativePrompt: '', width: 512, height: 512,
      samples: 1, steps: 30, guidanceScale: 7.5, strength: 0.7, scheduler: undefined, schedulerOverrides: {},
    });
    expect(job.initImage.mimeType).toBe('image/png');
    expect(new Uint8Array(job.initImage.bytes)).toEqual(INIT_PNG);
  });

  it('meta carries every field API.md asks for, with the values actually used', async () => {
    const { client, engine } = setup();
    const r = success(await client.img2img(structuredClone(SEED_EXAMPLE)));
    const meta = r.meta;
    for (const key of ['H', 'W', 'guidance_scale', 'model', 'n_samples', 'negative_prompt', 'prompt', 'seed', 'steps', 'safety_checker', 'vae', 'file_prefix', 'strength', 'init_image']) {
      expect(meta, key).toHaveProperty(key);
    }
    expect(meta).toMatchObject({
      H: 512, W: 512, guidance_scale: 7.5, model: 'tiny-sd', n_samples: 1, negative_prompt: '',
      prompt: 'a cat sitting on a bench' + ENHANCE_SUFFIX, steps: 30, safety_checker: 'no', strength: 0.7, init_image: INIT_URL,
      enhance_prompt: 'yes', base64: 'no', track_id: null, scheduler: 'PNDMScheduler', backend: 'wasm',
    });
    expect(meta.vae).toMatch(/tiny-sd/);
    expect(meta.file_prefix).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(meta.seed).toBe(engine.jobs[0].seed);
    expect(meta.safety_checker_status).toBeUndefined();
    expect(meta.prompt_truncated).toBeUndefined();
  });

  it('seed null gives a random integer seed below 2^32, reported in meta', async () => {
    const { client, engine } = setup();
    const seeds: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = success(await client.img2img(request({ seed: null })));
      const seed = engine.jobs[i].seed;
      expect(Number.isInteger(seed)).toBe(true);
      expect(seed).toBeGreaterThanOrEqual(0);
      expect(seed).toBeLessThan(2 ** 32);
      expect(r.meta.seed).toBe(seed);
      seeds.push(seed);
    }
    // Four draws from 2^32 values colliding would mean the seed is not random.
    expect(new Set(seeds).size).toBe(4);
  });

  it('a given seed and samples are passed to the engine, one output per sample', async () => {
    const { client, engine, urls } = setup();
    const r = success(await client.img2img(request({ seed: '1234', samples: '3' })));
    expect(engine.jobs[0]).toMatchObject({ seed: 1234, samples: 3 });
    expect(r.meta).toMatchObject({ seed: 1234, n_samples: 3, seeds: [1234, 1235, 1236] });
    expect(r.output).toEqual(['https://out.example/1.png', 'https://out.example/2.png', 'https://out.example/3.png']);
    expect(urls.map((u) => u.png)).toEqual([outputPng(1234), outputPng(1235), outputPng(1236)]);
  });

  it('every normalized field reaches the engine job', async () => {
    const { client, engine } = setup();
    success(await client.img2img(request({
      prompt: ' a dog ', negative_prompt: 'blurry', width: 500, height: '640', num_inference_steps: 20, guidance_scale: '0',
      strength: '0.5', scheduler: 'EulerDiscreteScheduler', use_karras_sigmas: 'yes', model_id: 'tiny-sd-analytic',
    })));
    expect(engine.jobs[0]).toMatchObject({
      prompt: 'a dog', negativePrompt: 'blurry', width: 496, height: 640, steps: 20, guidanceScale: 0, strength: 0.5,
      scheduler: 'EulerDiscreteScheduler', schedulerOverrides: { use_karras_sigmas: true },
    });
    expect(engine.loads.map((s) => s.id)).toEqual(['tiny-sd-analytic']);
  });

  it('meta.H and meta.W report the size the engine actually produced', async () => {
    const { client, engine } = setup();
    const render = engine.outcome;
    engine.outcome = (job) => {
      const o = render(job);
      return o.ok ? { ok: true, value: { ...o.value, width: 488, height: 384 } } : o;
    };
    const r = success(await client.img2img(request({ width: 490, height: 384 })));
    expect(r.meta).toMatchObject({ W: 488, H: 384 });
  });

  it('ids increase by one per accepted request: 1, 2, 3', async () => {
    const { client } = setup();
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push(success(await client.img2img(request())).id);
    expect(ids).toEqual([1, 2, 3]);
  });

  it('base64 "yes" with the default toUrl gives data:image/png;base64 URLs of the engine PNGs', async () => {
    const { client, engine } = setup({ toUrl: undefined });
    const r = success(await client.img2img(request({ base64: 'yes', samples: 2 })));
    expect(r.output).toHaveLength(2);
    r.output.forEach((url, i) => {
      expect(url.startsWith('data:image/png;base64,')).toBe(true);
      const decoded = new Uint8Array(Buffer.from(url.slice('data:image/png;base64,'.length), 'base64'));
      expect(decoded).toEqual(outputPng(engine.jobs[0].seed + i));
    });
    expect(r.meta.base64).toBe('yes');
  });

  it('base64 "no" with the default toUrl gives blob: URLs', async () => {
    const { client } = setup({ toUrl: undefined });
    const r = success(await client.img2img(request()));
    expect(r.output).toHaveLength(1);
    expect(r.output[0]).toMatch(/^blob:/);
    URL.revokeObjectURL(r.output[0]);
  });

  it('the enhanced prompt is what runs and what meta reports', async () => {
    const { client, engine } = setup();
    const r = success(await client.img2img(request({ enhance_prompt: true })));
    expect(engine.jobs[0].prompt).toBe('a cat' + ENHANCE_SUFFIX);
    expect(r.meta.prompt).toBe('a cat' + ENHANCE_SUFFIX);
  });

  it('track_id is echoed and a truncated prompt is reported', async () => {
    const { client, engine } = setup();
    const render = engine.outcome;
    engine.outcome = (job) => {
      const o = render(job);
      return o.ok ? { ok: true, value: { ...o.value, promptTruncated: true } } : o;
    };
    const r = success(await client.img2img(request({ track_id: 'abc' })));
    expect(r.meta.track_id).toBe('abc');
    expect(r.meta.prompt_truncated).toMatch(/truncated/);
  });

  it('safety_checker "yes" on a model without one: meta says "no" and why', async () => {
    const { client } = setup();
    const r = success(await client.img2img(request({ safety_checker: 'yes' })));
    expect(r.meta.safety_checker).toBe('no');
    expect(r.meta.safety_checker_status).toMatch(/not run/);
    expect(r.meta.safety_checker_status).toMatch(/tiny-sd/);
  });
});

describe('LocalClient.img2img: errors', () => {
  it('a bad request is answered at once and never reaches the engine or the network', async () => {
    const { client, engine, fetchFn } = setup();
    const r = failure(await client.img2img(request({ width: '4096', samples: 0 })));
    expect(r.message).toEqual({ width: ['The width may not be greater than 1024.'], samples: ['The samples must be at least 1.'] });
    expect(failure(await client.img2img(null)).message).toMatch(/JSON object/);
    expect(failure(await client.img2img(request({ model_id: 'nope' }))).message).toHaveProperty('model_id');
    expect(engine.loads).toEqual([]);
    expect(engine.jobs).toEqual([]);
    expect(fetchFn).not.toHaveBeenCalled();
  });

  it('bad requests do not use up ids', async () => {
    const { client } = setup();
    failure(await client.img2img({ prompt: '' }));
    expect(success(await client.img2img(request())).id).toBe(1);
  });

  it('an init image that cannot be fetched is an init_image field error and the engine does not run', async () => {
    const fetchFn = vi.fn(async () => new Response('Not Found', { status: 404 }));
    const { client, engine } = setup({ fetch: fetchFn });
    const r = failure(await client.img2img(request()));
    expect(r.message).toHaveProperty('init_image');
    expect((r.message as Record<string, string[]>).init_image[0]).toMatch(/HTTP 404/);
    expect(engine.jobs).toEqual([]);
  });

  it('engine outcome kind init_image -> field error on init_image with the reason', async () => {
    const { client, engine } = setup();
    engine.outcome = () => ({ ok: false, kind: 'init_image', message: 'the image could not be decoded' });
    const r = failure(await client.img2img(request()));
    expect(Object.keys(r.message)).toEqual(['init_image']);
    expect((r.message as Record<string, string[]>).init_image[0]).toMatch(/could not be decoded/);
  });

  it('engine outcome kind cancelled -> an error saying so', async () => {
    const { client, engine } = setup();
    engine.outcome = () => ({ ok: false, kind: 'cancelled', message: 'cancelled' });
    const r = failure(await client.img2img(request()));
    expect(typeof r.message).toBe('string');
    expect(r.message).toMatch(/cancelled/);
  });

  it.each(['engine', 'model'] as const)('engine outcome kind %s -> an error with the message', async (kind) => {
    const { client, engine } = setup();
    engine.outcome = () => ({ ok: false, kind, message: 'out of memory' });
    const r = failure(await client.img2img(request()));
    expect(r.message).toMatch(/out of memory/);
  });

  it('a model that fails to load is an error; the engine does not run; the next request tries again', async () => {
    const { client, engine } = setup();
    engine.loadOutcome = () => ({ ok: false, kind: 'model', message: 'unet/model.onnx: HTTP 404' });
    const r = failure(await client.img2img(request()));
    expect(typeof r.message).toBe('string');
    expect(r.message).toMatch(/tiny-sd/);
    expect(r.message).toMatch(/HTTP 404/);
    expect(engine.jobs).toEqual([]);

    engine.loadOutcome = new FakeEngine().loadOutcome;
    success(await client.img2img(request()));
    expect(engine.loads.map((s) => s.id)).toEqual(['tiny-sd', 'tiny-sd']);
  });

  it('a request the model\'s declared limits refuse is answered at once, before any load or download', async () => {
    const fixed: CatalogueEntry = {
      ...entry('webnn'), name: 'WebNN model',
      limits: { modes: { text2img: true, img2img: 'this model has no VAE encoder', inpaint: 'this model has no VAE encoder' }, fixedSize: { width: 512, height: 512 } },
    };
    const { client, engine } = setup({ models: [...MODELS, fixed] });
    expect(failure(await client.img2img(request({ model_id: 'webnn', width: 512, height: 512 }))).message).toEqual({
      model_id: ['WebNN model cannot run img2img: this model has no VAE encoder.'],
    });
    expect(failure(await client.text2img({ prompt: 'a cat', model_id: 'webnn', width: 256, height: 512 })).message).toEqual({
      width: ['WebNN model only generates 512x512 images (its graphs fix that size); ask for width 512 and height 512.'],
    });
    expect(engine.loads).toEqual([]);
  });

  it('once loaded, the limits the graphs declare are checked too', async () => {
    const { client, engine } = setup();
    engine.loadOutcome = (source) => {
      const ok = new FakeEngine().loadOutcome(source);
      return ok.ok ? { ok: true, value: { ...ok.value, limits: { ...ANY_REQUEST, fixedSize: { width: 64, height: 64 } } } } : ok;
    };
    success(await client.img2img(request({ width: 64, height: 64 })));
    expect(failure(await client.img2img(request({ width: 128, height: 64 }))).message).toMatchObject({ width: [expect.stringMatching(/only generates 64x64/)] });
    expect(engine.jobs).toHaveLength(1);
  });

  it('a failed load of another model does not break the model that was loaded before it', async () => {
    const { client, engine } = setup();
    success(await client.img2img(request()));
    engine.loadOutcome = (source) => (source.id === 'tiny-sd-analytic' ? { ok: false, kind: 'download', message: 'offline' } : new FakeEngine().loadOutcome(source));
    expect(failure(await client.img2img(request({ model_id: 'tiny-sd-analytic' }))).message).toMatch(/offline/);
    // The engine dropped tiny-sd before trying the other model: the next request must load it again.
    const after = success(await client.img2img(request({ model_id: 'tiny-sd' })));
    expect(after.meta.model).toBe('tiny-sd');
    expect(engine.loads.map((s) => s.id)).toEqual(['tiny-sd', 'tiny-sd-analytic', 'tiny-sd']);
    success(await client.img2img(request()));
  });

  it('an engine call that rejects (e.g. the worker died) does not stall the queue', async () => {
    const { client, engine } = setup();
    const real = engine.generate.bind(engine);
    let first = true;
    engine.generate = async (job, onProgress) => {
      if (first) {
        first = false;
        throw new Error('worker terminated');
      }
      return real(job, onProgress);
    };
    const p1 = client.img2img(request({ prompt: 'first' }));
    const p2 = client.img2img(request({ prompt: 'second' }));
    // The first answers with an error (never a rejection), and the second still runs.
    const r1 = await p1;
    expect(r1.status).toBe('error');
    expect(JSON.stringify(r1)).toMatch(/worker terminated/);
    expect(success(await p2).id).toBe(2);
  });
});

describe('LocalClient: queue, models, progress, cancel', () => {
  it('runs requests one at a time in arrival order, even when earlier ones are slower', async () => {
    const { client, engine } = setup();
    engine.delays = new Map([['r1', 40], ['r2', 5], ['r3', 20], ['r4', 0]]);
    const responses = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((prompt) => client.img2img(request({ prompt }))));
    expect(engine.events).toEqual(['r1', 'r2', 'r3', 'r4'].flatMap((prompt) => [{ what: 'start', prompt }, { what: 'end', prompt }]));
    expect(responses.map((r) => success(r).id)).toEqual([1, 2, 3, 4]);
    expect(responses.map((r) => success(r).meta.prompt)).toEqual(['r1', 'r2', 'r3', 'r4']);
  });

  it('a failing request in the middle does not break the order or the queue', async () => {
    const { client, engine } = setup();
    engine.delays = new Map([['a', 15]]);
    const render = engine.outcome;
    engine.outcome = (job) => (job.prompt === 'b' ? { ok: false, kind: 'engine', message: 'boom' } : render(job));
    const [a, b, bad, c] = await Promise.all([
      client.img2img(request({ prompt: 'a' })),
      client.img2img(request({ prompt: 'b' })),
      client.img2img(request({ prompt: 'c', width: 9999 })),
      client.img2img(request({ prompt: 'c' })),
    ]);
    expect(success(a).id).toBe(1);
    expect(failure(b).message).toMatch(/boom/);
    expect(failure(bad).message).toHaveProperty('width');
    expect(success(c).id).toBe(3);
    expect(engine.events.map((e) => `${e.what} ${e.prompt}`)).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('loads the model once, switches when a request names another, and meta.model follows', async () => {
    const { client, engine } = setup();
    success(await client.img2img(request()));
    success(await client.img2img(request()));
    expect(engine.loads.map((s) => s.id)).toEqual(['tiny-sd']);
    const r = success(await client.img2img(request({ model_id: 'tiny-sd-analytic' })));
    expect(r.meta.model).toBe('tiny-sd-analytic');
    expect(engine.loads).toEqual([MODELS[0].source, MODELS[1].source]);
    expect(client.modelInfo?.id).toBe('tiny-sd-analytic');
  });

  it('prepare() loads the default model ahead of the first request', async () => {
    const { client, engine } = setup();
    expect(client.modelInfo).toBeNull();
    const info = await client.prepare();
    expect(info).toMatchObject({ id: 'tiny-sd', backend: 'wasm' });
    expect(client.modelInfo?.id).toBe('tiny-sd');
    success(await client.img2img(request()));
    expect(engine.loads.map((s) => s.id)).toEqual(['tiny-sd']);
  });

  it('prepare() of a model that fails to load is an error response', async () => {
    const { client, engine } = setup();
    engine.loadOutcome = () => ({ ok: false, kind: 'model', message: 'bad checksum' });
    const r = await client.prepare();
    expect(r).toMatchObject({ status: 'error' });
    expect((r as ErrorResponse).message).toMatch(/bad checksum/);
    expect(client.modelInfo).toBeNull();
  });

  it('progress reaches onProgress through the proxy wrapper', async () => {
    const seen: (EngineProgress & { id: number | null })[] = [];
    const wrapped: unknown[] = [];
    const proxy = <T extends (...args: never[]) => unknown>(fn: T): T => {
      wrapped.push(fn);
      return fn;
    };
    const { client, engine } = setup({ onProgress: (p) => seen.push(p), proxy });
    success(await client.img2img(request()));
    expect(wrapped.length).toBeGreaterThanOrEqual(1);
    expect(engine.progressSinks[0]).toBeTypeOf('function');
    expect(seen.map((p) => p.phase)).toEqual(['load', 'denoise']);
  });

  it('progress that arrives after its load or job has answered is dropped, not shown as current', async () => {
    const seen: string[] = [];
    const { client, engine } = setup({ onProgress: (p) => seen.push(p.phase) });
    // Like the worker's progress port: events can trail the result that travels another way.
    const late = (sink: ((p: EngineProgress) => void) | undefined, p: EngineProgress) => setTimeout(() => sink?.(p), 5);
    const load = engine.loadModel.bind(engine);
    engine.loadModel = async (source, onProgress) => {
      const r = await load(source, onProgress);
      late(onProgress, { phase: 'download', modelId: source.id, file: 'unet/model.onnx', loaded: 1, total: 1, fromCache: false });
      return r;
    };
    const generate = engine.generate.bind(engine);
    engine.generate = async (job, onProgress) => {
      const r = await generate(job, onProgress);
      late(onProgress, { phase: 'denoise', sample: 1, samples: 1, step: job.steps, totalSteps: job.steps });
      return r;
    };
    success(await client.img2img(request()));
    const atAnswer = [...seen];
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toEqual(atAnswer);
    expect(atAnswer).toEqual(['load', 'denoise']);
  });

  it("the queue counts a request's UNet calls as its scheduler makes them: Heun calls twice a step but the last", async () => {
    const { client, engine } = setup();
    // running (and so leaving the queue's time alone) for as long as the test looks
    engine.delays.set('slow', 500);
    const running = client.img2img(request({ prompt: 'slow' }));
    await vi.waitFor(() => expect(engine.jobs).toHaveLength(1));
    const queued = async (scheduler: string) => {
      const { queue_num: n, queue_time: before } = client.systemLoad();
      const done = client.img2img(request({ prompt: scheduler, scheduler, num_inference_steps: 20, strength: 1 }));
      await vi.waitFor(() => expect(client.systemLoad().queue_num).toBe(n + 1));
      return { added: client.systemLoad().queue_time - before, done };
    };
    // no measured step yet: one second per call
    const euler = await queued('EulerDiscreteScheduler');
    const heun = await queued('HeunDiscreteScheduler');
    expect(euler.added).toBe(20);
    expect(heun.added).toBe(39);
    expect(engine.jobs).toHaveLength(1);
    await Promise.all([running, euler.done, heun.done]);
  });

  it('progress feeds the queue even without onProgress: system_load counts the running job', async () => {
    const { client, engine } = setup();
    engine.delays.set('slow', 50);
    const pending = client.img2img(request({ prompt: 'slow' }));
    await new Promise((r) => setTimeout(r, 10));
    expect(engine.progressSinks[0]).toBeTypeOf('function');
    expect(client.systemLoad()).toMatchObject({ status: 'ok', queue_num: 1 });
    success(await pending);
    expect(client.systemLoad()).toEqual({ status: 'ok', queue_num: 0, queue_time: 0 });
  });

  it('cancel() asks the engine to stop the running job', async () => {
    const { client, engine } = setup();
    engine.delays.set('slow', 50);
    const pending = client.img2img(request({ prompt: 'slow' }));
    await new Promise((r) => setTimeout(r, 10));
    expect(client.cancel()).toBe(true);
    expect(engine.cancels).toBe(1);
    await pending;
  });

  it("a step's progress is answered with whether the running job was cancelled", async () => {
    const { client, engine } = setup();
    engine.delays.set('slow', 50);
    const pending = client.img2img(request({ prompt: 'slow' }));
    await new Promise((r) => setTimeout(r, 10));
    const sink = engine.progressSinks[0]!;
    const step = { phase: 'denoise', sample: 1, samples: 1, step: 2, totalSteps: 20 } as const;
    expect(sink(step)).toBe(false);
    expect(sink({ phase: 'load', modelId: 'tiny-sd', message: 'x' })).toBe(false);
    client.cancel();
    expect(sink(step)).toBe(true);
    await pending;
    // after the job, late progress is neither shown nor answered "cancelled"
    expect(sink(step)).toBe(false);
  });

  it('a queued request can be cancelled by id and never reaches the engine', async () => {
    const { client, engine } = setup();
    engine.delays.set('first', 30);
    const first = client.img2img(request({ prompt: 'first' }));
    const second = client.img2img(request({ prompt: 'second' }));
    await new Promise((r) => setTimeout(r, 5));
    expect(client.cancel(2)).toBe(true);
    success(await first);
    const r2 = await second;
    expect(r2).toEqual({ status: 'error', message: 'The request was cancelled.' });
    expect(engine.jobs.map((j) => j.prompt)).toEqual(['first']);
    expect(await client.fetch(2)).toMatchObject({ status: 'failed', id: 2 });
  });

  /** A fetch whose answer for `hang` never comes (it only ends when its signal aborts); others get INIT_PNG. */
  function hangingFetch(hang: string) {
    const started: string[] = [];
    const fn = vi.fn((input: RequestInfo | URL, init?: RequestInit) => {
      started.push(String(input));
      if (!String(input).includes(hang)) return Promise.resolve(new Response(INIT_PNG.slice(), { headers: { 'content-type': 'image/png' } }));
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    });
    return { fn, started };
  }

  it('an init image URL that never answers times out as a field error, and the jobs behind it run', async () => {
    const { fn } = hangingFetch('never');
    const { client, engine } = setup({ fetch: fn, imageTimeoutMs: 40 });
    const stuck = client.img2img(request({ prompt: 'stuck', init_image: 'https://images.example/never.png' }));
    const behind = client.img2img(request({ prompt: 'behind' }));
    const r = failure(await stuck);
    expect(r.message).toEqual({ init_image: [expect.stringMatching(/no complete answer within 0 s/)] });
    success(await behind);
    expect(engine.jobs.map((j) => j.prompt)).toEqual(['behind']);
    expect(client.systemLoad()).toMatchObject({ queue_num: 0 });
  });

  it('cancel(id), or cancel(), stops a job while its init image is still downloading', async () => {
    for (const byId of [true, false]) {
      const { fn, started } = hangingFetch('slow');
      const { client, engine } = setup({ fetch: fn });
      const slow = client.img2img(request({ prompt: 'slow', init_image: 'https://images.example/slow.png' }));
      const behind = client.img2img(request({ prompt: 'behind' }));
      await vi.waitFor(() => expect(started).toHaveLength(1));
      expect(byId ? client.cancel(1) : client.cancel()).toBe(true);
      expect(await slow).toEqual({ status: 'error', message: 'The request was cancelled.' });
      success(await behind);
      expect(engine.jobs.map((j) => j.prompt)).toEqual(['behind']);
      expect(await client.fetch(1)).toMatchObject({ status: 'failed', id: 1 });
    }
  });

  it('instant_response answers processing at once; fetch gives processing, then the result', async () => {
    const { client, engine } = setup();
    engine.delays.set('later', 40);
    const processing = await client.img2img(request({ prompt: 'later', instant_response: 'yes' }));
    expect(processing).toMatchObject({ status: 'processing', id: 1, fetch_result: 'fetch(1)', output: [] });
    expect(processing).toHaveProperty('messege');
    expect(processing).toHaveProperty('message');
    expect((processing as { eta: number }).eta).toBeGreaterThanOrEqual(1);
    expect(await client.fetch(1)).toMatchObject({ status: 'processing', id: 1 });
    await new Promise((r) => setTimeout(r, 80));
    const done = await client.fetch(1);
    expect(done).toMatchObject({ status: 'success', id: 1 });
    expect(await client.fetch(99)).toMatchObject({ status: 'error' });
    expect(await client.fetch('abc')).toMatchObject({ status: 'error', message: { id: [expect.any(String)] } });
  });

  it('a webhook gets the result plus track_id and never the key', async () => {
    const posted: { url: string; payload: Record<string, unknown> }[] = [];
    const { client } = setup({ postWebhook: async (url, payload) => { posted.push({ url, payload: payload as Record<string, unknown> }); return { delivered: true, attempts: 1 }; } });
    success(await client.img2img(request({ key: 'secret-key', webhook: 'https://hooks.example/done', track_id: 'T-1' })));
    await new Promise((r) => setTimeout(r, 0));
    expect(posted).toHaveLength(1);
    expect(posted[0].url).toBe('https://hooks.example/done');
    expect(posted[0].payload).toMatchObject({ status: 'success', id: 1, track_id: 'T-1' });
    expect(JSON.stringify(posted[0].payload)).not.toContain('secret-key');
  });
});

describe('super resolution and base64_crop (the image-editing calls)', () => {
  it('super_resolution fetches url, upscales on the engine, and answers the success shape, fetchable by id', async () => {
    const { client, engine, fetchFn } = setup();
    const r = (await client.superResolution({ key: '', url: INIT_URL, scale: '2', face_enhance: false, track_id: 7 })) as SuccessResponse;
    expect(r.status).toBe('success');
    expect(r.output).toHaveLength(1);
    expect(r.meta).toMatchObject({ W: 4, H: 4, scale: 2, model: 'esrgan-slim', url: INIT_URL, runtime: 'local', track_id: 7 });
    expect(fetchFn).toHaveBeenCalledTimes(1);
    expect(engine.edits.map((e) => e.kind === 'upscale' && e.scale)).toEqual([2]);
    expect(await client.fetch(r.id)).toEqual(r);
  });

  it('defaults to 4x, takes init_image too, and refuses face_enhance, an unknown upscaler and a missing image by field', async () => {
    const { client, engine } = setup();
    const r = (await client.superResolution({ init_image: INIT_URL })) as SuccessResponse;
    expect(r.meta).toMatchObject({ scale: 4, init_image: INIT_URL });
    const refused = (await client.superResolution({ url: INIT_URL, face_enhance: 'yes', model_id: 'RealESRGAN_x4plus', scale: 8 })) as ErrorResponse;
    expect(Object.keys(refused.message as Record<string, string[]>).sort()).toEqual(['face_enhance', 'model_id', 'scale']);
    expect(((refused.message as Record<string, string[]>).face_enhance)[0]).toMatch(/does not run locally/);
    expect(((await client.superResolution({ scale: 2 })) as ErrorResponse).message).toEqual({ url: [expect.stringMatching(/url field is required/)] });
    expect(engine.edits).toHaveLength(1);
  });

  it('a cancel during the upscale ends it as cancelled', async () => {
    const { client, engine } = setup();
    engine.upscaleTiles = 5;
    let release = () => undefined as void;
    engine.upscaleHold = new Promise<void>((resolve) => (release = resolve));
    const pending = client.superResolution({ url: INIT_URL, scale: 3 });
    await vi.waitFor(() => expect(engine.edits).toHaveLength(1));
    expect(client.cancel()).toBe(true);
    release();
    expect(await pending).toEqual({ status: 'error', message: 'The request was cancelled.' });
  });

  it('upscale on text2img runs super resolution on every sample and reports the upscaled size', async () => {
    const { client, engine } = setup();
    engine.outcome = (job) => ({
      ok: true,
      value: {
        images: Array.from({ length: job.samples }, (_, i) => outputPng(i)), seeds: [job.seed, job.seed + 1], width: job.width, height: job.height,
        scheduler: 'PNDMScheduler', promptTruncated: false, safetyChecked: false, nsfw: [], hasSafetyChecker: false, timings: { total: 0.1, denoise: 0.1, stepsRun: 2 },
      },
    });
    const r = (await client.img2img({ ...SEED_EXAMPLE, samples: 2, upscale: '2' })) as SuccessResponse;
    expect(r.status).toBe('success');
    expect(r.meta).toMatchObject({ upscale: 2, W: 4, H: 4 });
    expect(engine.edits.map((e) => e.kind === 'upscale' && e.scale)).toEqual([2, 2]);
    expect(((await client.img2img({ ...SEED_EXAMPLE, upscale: 'maybe' })) as ErrorResponse).message).toEqual({ upscale: [expect.stringMatching(/"no", "yes"/)] });
  });

  it('refuses lora_model and lora_strength with the reason, before anything runs', async () => {
    const { client, engine } = setup();
    const r = (await client.img2img({ ...SEED_EXAMPLE, lora_model: 'more_details', lora_strength: '0.6' })) as ErrorResponse;
    expect((r.message as Record<string, string[]>).lora_model[0]).toMatch(/LoRA weights do not run locally yet/);
    expect(engine.jobs).toHaveLength(0);
  });

  it('base64_crop answers {status, messege, link, request_id} with the cropped size', async () => {
    const { client, engine } = setup();
    const r = (await client.base64Crop({ key: '', image: `data:image/png;base64,${Buffer.from(INIT_PNG).toString('base64')}`, crop: 'true' })) as Record<string, unknown>;
    expect(r).toMatchObject({ status: 'success', messege: 'image uploaded', link: expect.stringMatching(/^https:\/\/out\.example\//), request_id: expect.any(Number) });
    expect(engine.edits[0]).toMatchObject({ kind: 'crop', crop: true });
    expect(((await client.base64Crop({ crop: 'false' })) as ErrorResponse).message).toEqual({ image: [expect.stringMatching(/required/)] });
  });
});
