/**
 * The history store: finished results and the id counter survive a reload (a second HistoryStore
 * over the same IndexedDB store), output URLs are rebuilt from stored PNG bytes, and the API key
 * is never stored.
 */
import 'fake-indexeddb/auto';
import { createStore, entries } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { HistoryStore, toResponse, type HistoryInput } from '../../src/api/history-store.ts';
import type { FailedResponse } from '../../src/api/responses.ts';
import { successResponse } from '../../src/api/responses.ts';

const SECRET = 'sk-live-do-not-store-me';

let dbCount = 0;
/** A fresh database per test; the same UseStore handed to two HistoryStores is "the same page storage". */
const freshStore = () => createStore(`history-test-${dbCount++}`, 'responses');

const png = (...bytes: number[]) => new Uint8Array([0x89, 0x50, 0x4e, 0x47, ...bytes]);

function successInput(id: number, createdAt: number, pngs = [png(1), png(2)]): HistoryInput {
  return {
    response: successResponse(id, 1.5, pngs.map((_, i) => `blob:http://localhost/${id}-${i}`), {
      prompt: 'a cat sitting on a bench',
      seed: 42,
      W: 512,
      H: 512,
    }),
    request: { key: SECRET, prompt: 'a cat sitting on a bench', width: '512', seed: null, webhook: null },
    createdAt,
    pngs,
  };
}

function failedInput(id: number, createdAt: number): HistoryInput {
  const response: FailedResponse = { status: 'failed', id, message: 'The generation failed: out of memory', output: '' };
  return { response, request: { key: SECRET, prompt: 'too big' }, createdAt };
}

describe('HistoryStore ids', () => {
  it('hands out increasing ids that keep increasing after a reload', async () => {
    const idb = freshStore();
    const page1 = new HistoryStore({ store: idb });
    expect([await page1.nextId(), await page1.nextId(), await page1.nextId()]).toEqual([1, 2, 3]);
    const page2 = new HistoryStore({ store: idb });
    expect(await page2.nextId()).toBe(4);
  });

  it('never hands out the same id to concurrent calls', async () => {
    const history = new HistoryStore({ store: freshStore() });
    const ids = await Promise.all(Array.from({ length: 25 }, () => history.nextId()));
    expect(new Set(ids).size).toBe(25);
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('stays above every stored record even if the counter was lost', async () => {
    const idb = freshStore();
    const history = new HistoryStore({ store: idb });
    await history.save(40, successInput(40, 1000));
    expect(await history.nextId()).toBe(41);
  });
});

describe('HistoryStore records', () => {
  it('loads a saved success after a reload, with its PNG bytes, and rebuilds its output URLs', async () => {
    const idb = freshStore();
    const page1 = new HistoryStore({ store: idb });
    const id = await page1.nextId();
    const input = successInput(id, 1_700_000_000_000);
    await page1.save(id, input);

    const page2 = new HistoryStore({ store: idb });
    const record = await page2.load(id);
    expect(record).toBeDefined();
    if (!record) return;
    expect(record.id).toBe(id);
    expect(record.createdAt).toBe(1_700_000_000_000);
    expect(record.response).toEqual(input.response);
    expect(record.pngs?.map((p) => Array.from(p))).toEqual([Array.from(png(1)), Array.from(png(2))]);
    expect(record.pngs?.[0]).toBeInstanceOf(Uint8Array);

    const rebuilt = toResponse(record, (bytes, i) => `blob:reloaded/${i}/${bytes.at(-1)}`);
    expect(rebuilt).toEqual({ ...input.response, output: ['blob:reloaded/0/1', 'blob:reloaded/1/2'] });
  });

  it('keeps a failed result as it is, with no PNGs', async () => {
    const history = new HistoryStore({ store: freshStore() });
    await history.save(3, failedInput(3, 5));
    const record = await history.load(3);
    expect(record?.pngs).toBeUndefined();
    expect(record && toResponse(record, () => 'unused')).toEqual({
      status: 'failed', id: 3, message: 'The generation failed: out of memory', output: '',
    });
  });

  it('stores only the bytes of a PNG that is a view into a larger buffer', async () => {
    const idb = freshStore();
    const history = new HistoryStore({ store: idb });
    const big = new Uint8Array(1 << 16).fill(9);
    big.set(png(7), 100);
    await history.save(1, successInput(1, 1, [big.subarray(100, 105)]));
    const record = await new HistoryStore({ store: idb }).load(1);
    expect(record?.pngs?.[0].byteLength).toBe(5);
    expect(record?.pngs?.[0].buffer.byteLength).toBe(5);
    expect(Array.from(record?.pngs?.[0] ?? [])).toEqual(Array.from(png(7)));
  });

  it('never stores the API key, from the request or from the response meta', async () => {
    const idb = freshStore();
    const history = new HistoryStore({ store: idb });
    const withKeyInMeta = successInput(1, 10);
    (withKeyInMeta.response as { meta: Record<string, unknown> }).meta.key = SECRET;
    await history.save(1, withKeyInMeta);
    await history.save(2, failedInput(2, 20));

    // The caller's objects are not mutated.
    expect((withKeyInMeta.request as Record<string, unknown>).key).toBe(SECRET);

    const record = await history.load(1);
    expect(record?.request).toEqual({ prompt: 'a cat sitting on a bench', width: '512', seed: null, webhook: null });
    expect('key' in (record?.request ?? {})).toBe(false);

    // Nothing anywhere in the database carries the secret.
    const everything = await entries(idb);
    const text = JSON.stringify(everything, (_, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('"key"');
  });

  it('lists newest first without PNG bytes, and deletes', async () => {
    const idb = freshStore();
    const history = new HistoryStore({ store: idb });
    await history.save(1, successInput(1, 100));
    await history.save(2, failedInput(2, 300));
    await history.save(3, successInput(3, 200, [png(5)]));
    await history.save(4, successInput(4, 300));
    await history.nextId(); // the counter must not show up as a record

    const listed = await new HistoryStore({ store: idb }).list();
    expect(listed.map((r) => r.id)).toEqual([4, 2, 3, 1]);
    expect(listed.map((r) => r.pngCount)).toEqual([2, 0, 1, 2]);
    for (const r of listed) expect('pngs' in r).toBe(false);

    await history.delete(4);
    await history.delete(99);
    expect((await history.list()).map((r) => r.id)).toEqual([2, 3, 1]);
    expect(await history.load(4)).toBeUndefined();
    const keys = (await entries(idb)).map(([k]) => JSON.stringify(k));
    expect(keys).not.toContain(JSON.stringify(['png', 4]));
  });

  it('replaces a record saved again under the same id, dropping PNGs it no longer has', async () => {
    const history = new HistoryStore({ store: freshStore() });
    await history.save(1, successInput(1, 1));
    await history.save(1, failedInput(1, 2));
    const record = await history.load(1);
    expect(record?.response.status).toBe('failed');
    expect(record?.pngs).toBeUndefined();
  });

  it('answers undefined for an unknown id', async () => {
    expect(await new HistoryStore({ store: freshStore() }).load(12345)).toBeUndefined();
  });
});

describe('HistoryStore pages', () => {
  it('reads newest first, a page at a time, skipping what the filter drops and what it cannot read', async () => {
    const idb = freshStore();
    const history = new HistoryStore({ store: idb });
    for (let id = 1; id <= 30; id++) await history.save(id, id % 10 === 0 ? failedInput(id, id) : successInput(id, id, [png(id)]));
    const { set } = await import('idb-keyval');
    await set(31, { nothing: 'useful' }, idb);
    await set(32, 'not even an object', idb);
    const isSuccess = (s: { response: { status: string } }) => s.response.status === 'success';

    const first = await history.page({ limit: 5, filter: isSuccess });
    expect(first.items.map((s) => s.id)).toEqual([29, 28, 27, 26, 25]);
    expect(first.unreadable).toEqual([32, 31]);
    expect(first.next).toBe(25);
    for (const s of first.items) expect('pngs' in s).toBe(false);
    const second = await history.page({ limit: 5, before: first.next!, filter: isSuccess });
    expect(second.items.map((s) => s.id)).toEqual([24, 23, 22, 21, 19]);
    const rest = await history.page({ limit: 100, before: 5 });
    expect(rest.items.map((s) => s.id)).toEqual([4, 3, 2, 1]);
    expect(rest.next).toBeNull();
    // The counter and the PNGs are not records.
    await history.nextId();
    expect((await history.page({ limit: 100 })).items).toHaveLength(30);
    // An unreadable record loads as absent rather than throwing.
    expect(await history.load(31)).toBeUndefined();
  });
});
