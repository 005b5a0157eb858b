/**
 * Property-based fuzzing of the API layer with fast-check: requests whose every field takes values
 * of every wrong type (NaN, BigInt, Symbol, functions, nested objects, getters that throw, Proxies,
 * huge strings, prototype names), sent to each endpoint through the request router in auto mode,
 * so they reach the local client (a fake engine, a real IndexedDB history, image URLs that answer,
 * hang, 404 or are not images) and the hosted-API client (the mock hosted API on loopback).
 *
 * Invariants, for every call: it never throws, it answers within a time limit, and the answer is
 * the API's error shape or its success shape. Across the run: a job queued before the storm still
 * completes, every id handed out still fetches as success or failed, and the history still loads.
 *
 * The seed is fixed so CI is repeatable; FUZZ_SEED and FUZZ_RUNS explore further
 * (`FUZZ_SEED=$RANDOM FUZZ_RUNS=3000 npx vitest run tests/api/fuzz-requests.test.ts`).
 */
import 'fake-indexeddb/auto';
import { encode } from 'fast-png';
import fc from 'fast-check';
import { createStore } from 'idb-keyval';
import { ANY_REQUEST } from '../../src/models/model-descriptor.ts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HistoryStore } from '../../src/api/history-store.ts';
import { LocalClient } from '../../src/api/local-client.ts';
import { RemoteClient } from '../../src/api/remote-client.ts';
import { createRequestRouter } from '../../src/api/request-router.ts';
import { KNOWN_REQUEST_FIELDS, type Endpoint } from '../../src/api/validate-request.ts';
import type { EngineGenerationApi, WorkerJob, WorkerOutcome } from '../../src/engine/worker-api.ts';
import type { GenerationResult } from '../../src/engine/jobs.ts';
import type { CatalogueEntry } from '../../src/models/catalogue.ts';
import { startMockHostedApi, type MockHostedApi } from '../support/mock-hosted-api.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
/** No call may take longer than this; the slowest legitimate path is an image URL timing out (50 ms). */
const CALL_LIMIT_MS = 5_000;
const KEY = 'fuzz-key';

const PNG = encode({ width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(90) });
const PNG_B64 = Buffer.from(PNG).toString('base64');

/** Image URLs as requests give them: answering, hanging, missing, not an image, inline, nonsense. */
const IMAGE_VALUES = [
  'https://img.test/ok.png', 'https://img.test/hang.png', 'https://img.test/404.png', 'https://img.test/text.txt',
  'https://img.test/throws.png', `data:image/png;base64,${PNG_B64}`, PNG_B64, 'data:image/png;base64,!!!!', 'blob:nowhere/1',
  'ftp://img.test/x.png', 'not a url at all', '',
];

const imageFetch: typeof fetch = (input, init) => {
  const url = String(input);
  if (url.startsWith('data:')) return fetch(url, init);
  if (url.includes('hang')) {
    return new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
  }
  if (url.includes('404')) return Promise.resolve(new Response('missing', { status: 404 }));
  if (url.includes('text')) return Promise.resolve(new Response('hello', { headers: { 'content-type': 'text/plain' } }));
  if (url.includes('throws')) return Promise.reject(new TypeError('Failed to fetch'));
  if (url.includes('ok.png')) return Promise.resolve(new Response(PNG.slice(), { headers: { 'content-type': 'image/png' } }));
  return Promise.reject(new TypeError(`no route to ${url}`));
};

/** An engine that answers at once, one small PNG per sample, whatever the mode. */
const engine: EngineGenerationApi = {
  init: async () => ({ backend: 'wasm', reason: 'fuzz', shaderF16: false }),
  loadModel: async (source) => ({
    ok: true,
    value: { id: source.id, backend: 'wasm', backendReason: 'fuzz', schedulerClass: 'EulerDiscreteScheduler', inputTypes: {}, deviceLoop: 'fuzz', loadTimings: { readSeconds: 0, createSeconds: 0, largestFileBytes: 0 }, limits: ANY_REQUEST, family: 'stable-diffusion' },
  }),
  generate: async (job: WorkerJob): Promise<WorkerOutcome<GenerationResult>> => {
    if (job.prompt.includes('sentinel')) await new Promise((resolve) => setTimeout(resolve, 200));
    return {
      ok: true,
      value: {
        images: Array.from({ length: job.samples }, () => PNG), seeds: Array.from({ length: job.samples }, (_, i) => job.seed + i),
        width: job.width, height: job.height, scheduler: job.scheduler ?? 'EulerDiscreteScheduler', promptTruncated: false,
        safetyChecked: false, nsfw: [], hasSafetyChecker: false, timings: { total: 0.01, denoise: 0.01, stepsRun: job.steps },
      },
    };
  },
  editImage: async () => ({ ok: false, kind: 'engine', message: 'no image editing in this test' }),
  cancel: () => undefined,
};

const MODELS: CatalogueEntry[] = ['tiny-sd', 'tiny-sd-analytic'].map((id) => ({ id, name: id, description: '', bundled: true, source: { id, baseUrl: `http://x/${id}/`, files: [] } }));

// --- generators -------------------------------------------------------------------------------------

/**
 * Stands for a value that fights back (a Proxy whose traps throw), made only when the request is
 * built: fast-check must be able to print a failing example, and printing a Proxy would throw.
 */
class Hostile {
  constructor(readonly kind: 'proxy' | 'keys') {}
  make(): object {
    return this.kind === 'proxy'
      ? new Proxy({}, { get: () => { throw new Error('proxy get'); }, ownKeys: () => { throw new Error('proxy keys'); } })
      : new Proxy({}, { ownKeys: () => { throw new Error('no'); } });
  }
}
const real = (v: unknown): unknown => (v instanceof Hostile ? v.make() : v);

/** Values of every type a JSON-ish (or hostile JavaScript) caller can put in a field. */
const wrong: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, false, NaN, Infinity, -Infinity, -0, 0, -1, 1e308, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 0.5),
  fc.integer(), fc.double(), fc.bigInt(),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', ' ', 'yes', 'no', 'true', '512', ' 64 ', '1e3', '0x40', '-1', 'NaN', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '<script>alert(1)</script>', '\u0000', '💥'.repeat(50)),
  fc.constant('x'.repeat(100_000)),
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string()), { maxKeys: 3 }),
  fc.constant(Symbol('fuzz')), fc.constant(() => 'a function'), fc.date({ noInvalidDate: false }),
  fc.constant(new Hostile('proxy')),
);

/** Valid values nine times in ten, edge cases (often just out of range) the tenth. */
function mostly(valid: fc.Arbitrary<unknown>, edges: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 9, arbitrary: valid }, { weight: 1, arbitrary: edges });
}

/** Plausible values per field, so that many requests get past validation into the queue. */
function plausible(field: string): fc.Arbitrary<unknown> {
  switch (field) {
    case 'prompt': return mostly(fc.oneof(fc.constant('a cat'), fc.string({ minLength: 1, maxLength: 300 })), fc.constantFrom('', '   '));
    case 'negative_prompt': return mostly(fc.oneof(fc.constant(null), fc.string({ maxLength: 40 })), fc.constant(7));
    case 'width': case 'height': return mostly(fc.constantFrom(64, '64', 72, ' 96 ', 67), fc.constantFrom(0, 63, 1025, 2048, '1e3'));
    case 'samples': return mostly(fc.integer({ min: 1, max: 4 }), fc.constantFrom('2', 5, 0));
    case 'num_inference_steps': return mostly(fc.integer({ min: 1, max: 50 }), fc.constantFrom('20', 51, 0));
    case 'guidance_scale': return mostly(fc.oneof(fc.constantFrom(0, 1, 7.5, 20), fc.double({ min: 1, max: 20, noNaN: true })), fc.constantFrom(0.5, 21, -1));
    case 'strength': return mostly(fc.double({ min: 0.2, max: 1, noNaN: true }), fc.constantFrom(0, 0.01, -1, 2));
    case 'seed': return mostly(fc.oneof(fc.constantFrom(null, -1, 0, 42, '42'), fc.integer({ min: 0 })), fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 53, -2, 1.5));
    case 'init_image': case 'mask_image': return mostly(fc.constantFrom(IMAGE_VALUES[0], IMAGE_VALUES[5], IMAGE_VALUES[6]), fc.constantFrom(...IMAGE_VALUES));
    case 'scheduler': return mostly(fc.constantFrom('EulerDiscreteScheduler', 'Euler a', 'DPM++ 2M Karras', 'DDIMScheduler', null), fc.constantFrom('KarrasVeScheduler', 'Nope', '__proto__', 'constructor'));
    case 'use_karras_sigmas': return mostly(fc.constantFrom('yes', 'no', true, false), fc.constant('maybe'));
    case 'algorithm_type': return mostly(fc.constant(null), fc.constantFrom('dpmsolver++', 'sde-dpmsolver++', 'nope'));
    case 'model_id': return mostly(fc.constantFrom('tiny-sd', 'tiny-sd-analytic', null), fc.constantFrom('sdxl-remote-only', '__proto__'));
    case 'webhook': return mostly(fc.constantFrom(null, 'https://hooks.test/x'), fc.constantFrom('ftp://x', 'not a url'));
    case 'key': return mostly(fc.constantFrom('', KEY, null), fc.constant('wrong-key'));
    case 'safety_checker': case 'enhance_prompt': case 'base64':
      return mostly(fc.constantFrom('yes', 'no', true, false), fc.constant('maybe'));
    case 'instant_response': return mostly(fc.constantFrom('no', false), fc.constant('yes'));
    case 'track_id': return fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null));
    // LoRA is refused until it runs locally; upscale asks the engine's super resolution.
    case 'lora_model': case 'lora_strength': return mostly(fc.constant(null), fc.constantFrom('add_detail', '0.7'));
    case 'upscale': return mostly(fc.constantFrom('no', null, 1, '1', false), fc.constantFrom('2', 'yes', 5, 'maybe'));
    default: return fc.string({ maxLength: 10 });
  }
}

/** null mostly, a value once in `oneIn` draws. */
function rarely<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

interface RequestSpec {
  /** Plausible values for the fields it sets. */
  fields: Record<string, unknown>;
  /** A few fields given a value of a wrong type on top. */
  wrongs: Record<string, unknown>;
  extra: Record<string, unknown>;
  /** A field whose getter throws, if any. */
  throwing: string | null;
  /** Replace the whole request with a non-object. */
  whole: unknown;
}

const FIELD_NAMES = KNOWN_REQUEST_FIELDS as string[];

/** Requests for an endpoint: its required fields are there (plausibly), the rest come and go. */
const requestSpec = (endpoint: Endpoint): fc.Arbitrary<RequestSpec> => fc.record({
  fields: fc.record(Object.fromEntries(FIELD_NAMES.map((f) => [f, plausible(f)])), {
    requiredKeys: ['prompt', ...(endpoint === 'text2img' ? [] : ['init_image']), ...(endpoint === 'inpaint' ? ['mask_image'] : [])],
  }),
  // Mostly one or two bad fields, so that a request fails on them rather than on the luck of the draw.
  wrongs: fc.uniqueArray(fc.constantFrom(...FIELD_NAMES), { maxLength: 2 }).chain((names) =>
    fc.tuple(...names.map(() => wrong)).map((values) => Object.fromEntries(names.map((n, i) => [n, values[i]])))),
  extra: fc.dictionary(fc.constantFrom('extra', 'nested', '__proto__', 'constructor', 'then', 'toJSON', 'valueOf'), wrong, { maxKeys: 3 }),
  // Rare on purpose: each would end validation at once, hiding what the other fields do.
  throwing: rarely(fc.constantFrom(...FIELD_NAMES), 12),
  whole: rarely(fc.oneof(fc.constantFrom('a string', 42, [], true), fc.constant(new Hostile('keys'))), 15),
});

function build(spec: RequestSpec): unknown {
  if (spec.whole !== null) return real(spec.whole);
  const request: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec.extra)) Object.defineProperty(request, k, { value: real(v), enumerable: true, configurable: true, writable: true });
  for (const [k, v] of Object.entries({ ...spec.fields, ...spec.wrongs })) request[k] = real(v);
  if (spec.throwing) Object.defineProperty(request, spec.throwing, { enumerable: true, get: () => { throw new Error(`getter ${spec.throwing}`); } });
  return request;
}

// --- invariants -------------------------------------------------------------------------------------

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CALL_LIMIT_MS} ms`)), CALL_LIMIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** The API's error shape: a string, or a map of fields to lists of strings. */
function isErrorShape(r: Record<string, unknown>): boolean {
  if (r.status !== 'error') return false;
  if (typeof r.message === 'string') return r.message.length > 0;
  return typeof r.message === 'object' && r.message !== null && Object.values(r.message).every((v) => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string'));
}

function isSuccessShape(r: Record<string, unknown>): boolean {
  return r.status === 'success' && Array.isArray(r.output) && r.output.length > 0 && r.output.every((u) => typeof u === 'string')
    && (typeof r.id === 'number' || typeof r.id === 'string') && typeof r.meta === 'object' && r.meta !== null && !JSON.stringify(r).includes(KEY);
}

function isProcessingShape(r: Record<string, unknown>): boolean {
  return r.status === 'processing' && (typeof r.id === 'number' || typeof r.id === 'string') && typeof r.eta === 'number';
}

// --- the run ----------------------------------------------------------------------------------------

let api: MockHostedApi;
beforeAll(async () => {
  api = await startMockHostedApi({ key: KEY });
});
afterAll(() => api.close());

describe.each(['text2img', 'img2img', 'inpaint'] as Endpoint[])('fuzzing %s', (endpoint) => {
  it(`${RUNS} generated requests: never a throw or a hang, always the API's shapes; queued work and history survive`, async () => {
    const store = createStore(`fuzz-${endpoint}`, 'responses');
    const webhooks: unknown[] = [];
    const local = new LocalClient({
      engine, backend: { backend: 'wasm', reason: 'fuzz', shaderF16: false }, models: MODELS, defaultModelId: 'tiny-sd',
      fetch: imageFetch, imageTimeoutMs: 50, history: new HistoryStore({ store }), toUrl: (_png, base64) => (base64 ? 'data:image/png;base64,AA==' : 'blob:fuzz/1'),
      postWebhook: async (_url, payload) => {
        webhooks.push(JSON.parse(JSON.stringify(payload)));
        return { delivered: true, attempts: 1 };
      },
    });
    const remote = new RemoteClient({ endpoint: api.url, key: KEY, timeoutMs: 3_000, pollLimitMs: 2_000, sleep: async () => undefined, isOnline: () => true });
    const router = createRequestRouter({
      mode: 'auto', storedKey: () => KEY, local, remote, backend: { backend: 'wasm', reason: 'fuzz', shaderF16: false },
      models: MODELS, defaultModelId: 'tiny-sd', allowWasm: true, isDownloaded: async () => true, isDeviceFailure: () => false,
    });

    // A job accepted before the storm, still running when it starts.
    const sentinel = await router.generate(endpoint, { prompt: 'sentinel', init_image: 'https://img.test/ok.png', mask_image: 'https://img.test/ok.png', instant_response: 'yes', width: 64, height: 64 });
    expect(sentinel).toMatchObject({ status: 'processing' });

    let calls = 0;
    await fc.assert(
      fc.asyncProperty(requestSpec(endpoint), fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constantFrom(null, undefined, NaN, -1, 1e20, '1', ' 2 ')), async (spec, weirdId) => {
        calls++;
        const r = (await within(router.generate(endpoint, build(spec)), endpoint)) as unknown as Record<string, unknown>;
        expect(typeof r, 'an answer object').toBe('object');
        expect(isErrorShape(r) || isSuccessShape(r) || isProcessingShape(r), JSON.stringify(r, (_k, v: unknown) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…` : v))).toBe(true);
        const fetched = (await within(router.fetch(weirdId as number), 'fetch')) as unknown as Record<string, unknown>;
        expect(['success', 'error', 'processing', 'failed']).toContain(fetched.status);
        expect(typeof local.cancel(weirdId as number)).toBe('boolean');
        expect(local.systemLoad()).toMatchObject({ status: 'ok' });
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(calls).toBe(RUNS);

    // The sentinel ran to the end, and every id handed out still answers with a final state.
    const sentinelId = (sentinel as { id: number }).id;
    await vi.waitFor(async () => expect(await local.fetch(sentinelId)).toMatchObject({ status: 'success', id: sentinelId }), { timeout: 5_000 });
    const history = new HistoryStore({ store });
    const page = await history.page({ limit: 100_000 });
    expect(page.unreadable).toEqual([]);
    // A good share of the requests got past validation into the queue (and the mock hosted API).
    expect(page.items.length).toBeGreaterThan(RUNS / 20);
    const reloaded = new LocalClient({ engine, backend: { backend: 'wasm', reason: 'fuzz', shaderF16: false }, models: MODELS, defaultModelId: 'tiny-sd', history, toUrl: () => 'blob:fuzz/2' });
    for (const s of page.items) {
      const f = await reloaded.fetch(s.id);
      expect(['success', 'failed'], JSON.stringify(f)).toContain(f.status);
    }
    for (const payload of webhooks) expect(JSON.stringify(payload)).not.toContain(KEY);
  }, 600_000);
});
