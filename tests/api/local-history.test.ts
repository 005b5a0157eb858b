/**
 * fetch(id) after a page reload: a finished request's response and PNGs live in IndexedDB, and a
 * new client (a new page) answers fetch with fresh output URLs and continues the id sequence.
 */
import 'fake-indexeddb/auto';
import { createStore } from 'idb-keyval';
import { encode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { HistoryStore } from '../../src/api/history-store.ts';
import { LocalClient } from '../../src/api/local-client.ts';
import type { EngineGenerationApi, WorkerJob } from '../../src/engine/worker-api.ts';

const PNG = encode({ width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) });

const engine: EngineGenerationApi = {
  init: async () => ({ backend: 'wasm', reason: 'test', shaderF16: false }),
  loadModel: async (source) => ({ ok: true, value: { id: source.id, backend: 'wasm', backendReason: 'test', schedulerClass: 'EulerDiscreteScheduler', inputTypes: {},
    deviceLoop: 'WASM runs on the CPU', loadTimings: { readSeconds: 0, createSeconds: 0, largestFileBytes: 0 } } }),
  generate: async (job: WorkerJob) => ({
    ok: true,
    value: {
      images: [PNG], seeds: [job.seed], width: job.width, height: job.height, scheduler: 'EulerDiscreteScheduler', promptTruncated: false,
      safetyChecked: false, nsfw: [], hasSafetyChecker: false, timings: { total: 0.1, denoise: 0.1, stepsRun: 2 },
    },
  }),
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
