/**
 * fetch(id) after a page reload: a finished request's response and PNGs live in IndexedDB, and a
 * new client (a new page) answers fetch with fresh output URLs and continues the id sequence.
 */
import 'fake-indexeddb/auto';
import { createStore } from 'idb-keyval';
import { encode } from 'fast-png';
import { describe, expect, it, vi } from 'vitest';
import { HistoryStore } from '../../src/api/history-store.ts';
import { ANY_REQUEST } from '../../src/models/model-descriptor.ts';
import { CLOSED_WHILE_RUNNING, LocalClient } from '../../src/api/local-client.ts';
import type { EngineGenerationApi, WorkerJob } from '../../src/engine/worker-api.ts';

const PNG = encode({ width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) });

const engine: EngineGenerationApi = {
  init: async () => ({ backend: 'wasm', reason: 'test', shaderF16: false }),
  loadModel: async (source) => ({ ok: true, value: { id: source.id, backend: 'wasm', backendReason: 'test', schedulerClass: 'EulerDiscreteScheduler', inputTypes: {},
    deviceLoop: 'WASM runs on the CPU', loadTimings: { readSeconds: 0, createSeconds: 0, largestFileBytes: 0 }, limits: ANY_REQUEST, family: 'stable-diffusion' } }),
  generate: async (job: WorkerJob) => ({
    ok: true,
    value: {
      images: [PNG], seeds: [job.seed], width: job.width, height: job.height, scheduler: 'EulerDiscreteScheduler', promptTruncated: false,
      safetyChecked: false, nsfw: [], hasSafetyChecker: false, timings: { total: 0.1, denoise: 0.1, stepsRun: 2 },
    },
  }),
  editImage: async () => ({ ok: false, kind: 'engine', message: 'no image editing in this test' }),
  cancel: () => undefined,
};

function page(store: ReturnType<typeof createStore>, urls: string[]) {
  return new LocalClient({
    engine, backend: { backend: 'wasm', reason: 'test', shaderF16: false },
    models: [{ id: 'tiny-sd', name: 'tiny-sd', description: '', source: { id: 'tiny-sd', baseUrl: 'http://x/', files: [] } }],
    defaultModelId: 'tiny-sd', history: new HistoryStore({ store }),
    toUrl: () => { const u = `blob:test/${urls.length}`; urls.push(u); return u; },
  });
}

describe('LocalClient history', () => {
  it('fetch(id) works after a reload, with new URLs, and ids keep increasing', async () => {
    const store = createStore('history-reload-test', 'responses');
    const urls: string[] = [];
    const before = page(store, urls);
    const first = await before.text2img({ prompt: 'a cat', key: 'secret', seed: 5 });
    expect(first).toMatchObject({ status: 'success', id: 1 });
    const after = page(store, urls); // the page reloaded
    const fetched = await after.fetch(1);
    expect(fetched).toMatchObject({ status: 'success', id: 1, meta: { seed: 5, prompt: 'a cat' } });
    expect((fetched as { output: string[] }).output[0]).not.toBe((first as { output: string[] }).output[0]);
    expect(await after.text2img({ prompt: 'a dog' })).toMatchObject({ status: 'success', id: 2 });
    const record = await new HistoryStore({ store }).load(1);
    expect(JSON.stringify(record?.request)).not.toContain('secret');
  });
});

/** An engine whose jobs never finish: the page "closes" while one runs. */
const stuckEngine: EngineGenerationApi = { ...engine, generate: () => new Promise(() => undefined) };

function pageWith(store: ReturnType<typeof createStore>, options: Partial<ConstructorParameters<typeof LocalClient>[0]> = {}) {
  return new LocalClient({
    engine, backend: { backend: 'wasm', reason: 'test', shaderF16: false },
    models: [{ id: 'tiny-sd', name: 'tiny-sd', description: '', source: { id: 'tiny-sd', baseUrl: 'http://x/', files: [] } }],
    defaultModelId: 'tiny-sd', history: new HistoryStore({ store }), toUrl: () => 'blob:test/x',
    ...options,
  });
}

let storeCount = 0;
const freshStore = () => createStore(`local-history-${storeCount++}`, 'responses');

describe('jobs across a reload', () => {
  it('a job running when the page closed answers failed with the reason after a reload, never "not found"', async () => {
    const store = freshStore();
    const before = pageWith(store, { engine: stuckEngine });
    const accepted = await before.text2img({ prompt: 'a cat', instant_response: 'yes' });
    expect(accepted).toMatchObject({ status: 'processing', id: 1 });
    const queued = await before.text2img({ prompt: 'a dog', instant_response: 'yes' });
    expect(queued).toMatchObject({ status: 'processing', id: 2 });

    const after = pageWith(store); // the page reloaded; the old one is gone
    for (const id of [1, 2]) expect(await after.fetch(id)).toEqual({ status: 'failed', id, message: CLOSED_WHILE_RUNNING, output: '' });
    expect(await after.fetch(3)).toMatchObject({ status: 'error', message: 'No request with id 3 was found.' });
    // The verdict is stored: a third page reads it without asking about owners again.
    const third = pageWith(store, { isPageAlive: async () => { throw new Error('must not be asked'); } });
    expect(await third.fetch(1)).toMatchObject({ status: 'failed', message: CLOSED_WHILE_RUNNING });
  });

  it('a job another open tab runs stays processing', async () => {
    const store = freshStore();
    await pageWith(store, { engine: stuckEngine }).text2img({ prompt: 'a cat', instant_response: 'yes' });
    const other = pageWith(store, { isPageAlive: async () => true });
    expect(await other.fetch(1)).toMatchObject({ status: 'processing', id: 1 });
  });

  it('fetch(id) right after cancel(id) of a queued job answers failed, not "not found"', async () => {
    const client = pageWith(freshStore(), { engine: stuckEngine });
    await client.text2img({ prompt: 'first', instant_response: 'yes' });
    const second = await client.text2img({ prompt: 'second', instant_response: 'yes' });
    expect(client.cancel((second as { id: number }).id)).toBe(true);
    expect(await client.fetch(2)).toEqual({ status: 'failed', id: 2, message: 'The request was cancelled.', output: '' });
  });
});

describe('what the history keeps', () => {
  it('odd extra fields (BigInt, a cycle, a function, a Symbol) neither fail the save nor break the history', async () => {
    const store = freshStore();
    const client = pageWith(store);
    const request: Record<string | symbol, unknown> = { prompt: 'a cat', seed: 7, big: 10n, fn: () => 1, [Symbol('s')]: 1, sym: Symbol('x') };
    request.self = request;
    const r = await client.text2img(request);
    expect(r).toMatchObject({ status: 'success', id: 1 });
    const after = pageWith(store);
    expect(await after.fetch(1)).toMatchObject({ status: 'success', id: 1, meta: { seed: 7 } });
    const history = new HistoryStore({ store });
    const [summary] = await history.list();
    expect(summary.request).toEqual({ prompt: 'a cat', seed: 7 });
    expect(JSON.stringify(summary)).toBeTypeOf('string');
  });

  it('the init and mask images move to the worker, not copied, and the history keeps them as the worker hands them back', async () => {
    const store = freshStore();
    const sent: WorkerJob[] = [];
    const client = pageWith(store, {
      // as postMessage with a transfer list does: the page's buffers are detached, the worker gets them
      transfer: (value, buffers) => structuredClone(value, { transfer: buffers }),
      engine: {
        ...engine,
        generate: async (job: WorkerJob) => {
          sent.push(job);
          const result = await engine.generate(job);
          if (!result.ok || job.mode !== 'inpaint') return result;
          return { ok: true, value: { ...result.value, returnedImages: { initImage: job.initImage, maskImage: job.maskImage } } };
        },
      },
    });
    const init = `data:image/png;base64,${Buffer.from(PNG).toString('base64')}`;
    const mask = `data:image/png;base64,${Buffer.from(encode({ width: 1, height: 1, channels: 3, data: new Uint8Array([255, 255, 255]) })).toString('base64')}`;
    const r = await client.inpaint({ prompt: 'a cat', init_image: init, mask_image: mask, width: 64, height: 64 });
    expect(r.status).toBe('success');
    const job = sent[0];
    if (job.mode !== 'inpaint') throw new Error('an inpaint job was sent');
    expect(job.initImage.bytes.byteLength).toBe(PNG.byteLength);
    const inputs = await new HistoryStore({ store }).loadInputs(1);
    expect(new Uint8Array(inputs.init_image!.bytes)).toEqual(PNG);
    expect(inputs.mask_image!.bytes.byteLength).toBe(job.maskImage.bytes.byteLength);
  });

  it('a huge inline init image is returned and stored as a short reference, its bytes kept once, and never posted', async () => {
    const store = freshStore();
    const posted: string[] = [];
    const client = pageWith(store, {
      engine: { ...engine, generate: async (job: WorkerJob) => ({ ...(await engine.generate(job)) }) },
      postWebhook: async (_url, payload) => {
        posted.push(JSON.stringify(payload));
        return { delivered: true, attempts: 1 };
      },
    });
    // A valid PNG padded to 3 MB: the data: URL is 4 MB of text.
    const padded = new Uint8Array(3 * 1024 * 1024);
    padded.set(PNG);
    const dataUrl = `data:image/png;base64,${Buffer.from(padded).toString('base64')}`;
    const r = await client.img2img({ prompt: 'a cat', init_image: dataUrl, width: 64, height: 64, webhook: 'https://hooks.example/x' });
    expect(r.status).toBe('success');
    const meta = (r as { meta: Record<string, unknown> }).meta;
    expect(String(meta.init_image)).toMatch(/^inline image \(image\/png, 4\.0 M characters as sent; not repeated\)$/);
    const history = new HistoryStore({ store });
    const record = await history.load(1);
    expect(JSON.stringify(record?.request).length).toBeLessThan(500);
    expect(JSON.stringify(record?.response).length).toBeLessThan(2000);
    const inputs = await history.loadInputs(1);
    expect(inputs.init_image?.bytes.byteLength).toBe(padded.byteLength);
    expect(inputs.init_image?.mimeType).toBe('image/png');
    await vi.waitFor(() => expect(posted).toHaveLength(1));
    expect(posted[0].length).toBeLessThan(2000);
    expect(posted[0]).not.toContain('base64,');
    expect(JSON.parse(posted[0]).meta.init_image).toBe(meta.init_image);
    expect(record?.response.meta?.init_image).toBe(meta.init_image);
  });

  it('an init image that cannot be fetched is stored as failed with the field map, not a JSON string', async () => {
    const store = freshStore();
    const client = pageWith(store, { fetch: async () => new Response('nope', { status: 404 }) });
    const r = await client.img2img({ prompt: 'a cat', init_image: 'https://images.example/missing.png' });
    expect(r).toMatchObject({ status: 'error', message: { init_image: [expect.stringMatching(/HTTP 404/)] } });
    const fetched = await pageWith(store).fetch(1);
    expect(fetched).toMatchObject({ status: 'failed', message: { init_image: [expect.stringMatching(/HTTP 404/)] } });
  });
});
