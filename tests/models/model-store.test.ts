/**
 * The model store against a fetch stub: files come from the network once, are verified (size,
 * sha256) before they count as cached, and a stored copy that no longer matches is dropped and
 * fetched again. The resumable paths run against the mock hub in model-download.test.ts.
 */
import 'fake-indexeddb/auto';
import { createStore, set } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { CorruptCacheError, IntegrityError, ModelFileError, ModelStore, type ModelStoreOptions } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { sha256Hex } from '../../src/models/sha256.ts';

const BODY = new Uint8Array(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));

async function sourceFor(bytes: Uint8Array, overrides: Partial<ModelSource['files'][number]> = {}): Promise<ModelSource> {
  return { id: 'm', baseUrl: 'http://hub.test/repo/', files: [{ path: 'unet/model.onnx', size: bytes.byteLength, sha256: await sha256Hex(bytes), ...overrides }] };
}

function countingFetch(body: Uint8Array) {
  const calls: string[] = [];
  const fn: typeof fetch = async (input) => {
    calls.push(String(input));
    return new Response(body as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(body.byteLength) } });
  };
  return { calls, fn };
}

let storeCount = 0;
const freshStore = () => createStore(`store-test-${storeCount++}`, 'files');
/** toEqual walks a typed array element by element, seconds for 300 kB; Buffer.equals is a memcmp. */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const storeWith = (options: ModelStoreOptions) => new ModelStore({ storage: null, retryDelayMs: 0, chunkSize: 64 * 1024, ...options });

describe('ModelStore', () => {
  it('downloads once with progress, then serves the verified copy from IndexedDB', async () => {
    const net = countingFetch(BODY);
    const idb = freshStore();
    const source = await sourceFor(BODY);
    const progress: number[] = [];
    const first = await storeWith({ fetch: net.fn, store: idb }).getFile(source, source.files[0], (p) => progress.push(p.loaded));
    expect(same(first, BODY)).toBe(true);
    expect(net.calls).toEqual(['http://hub.test/repo/unet/model.onnx']);
    expect(progress.at(-1)).toBe(BODY.byteLength);
    const cachedEvents: boolean[] = [];
    const second = await storeWith({ fetch: net.fn, store: idb }).getFile(source, source.files[0], (p) => cachedEvents.push(p.fromCache));
    expect(same(second, BODY)).toBe(true);
    expect(second.buffer.byteLength).toBe(BODY.byteLength); // one buffer of the file's size
    expect(net.calls).toHaveLength(1);
    expect(cachedEvents).toEqual([true]);
  });

  it('uses a file url that overrides baseUrl + path', async () => {
    const net = countingFetch(BODY);
    const source = await sourceFor(BODY, { url: 'http://cdn.test/objects/abc' });
    await storeWith({ fetch: net.fn, store: freshStore() }).getFile(source, source.files[0]);
    expect(net.calls).toEqual(['http://cdn.test/objects/abc']);
  });

  it('refuses a download whose sha256 does not match and stores nothing', async () => {
    const corrupted = BODY.slice();
    corrupted[1234] ^= 0xff;
    const source = await sourceFor(BODY);
    const store = storeWith({ fetch: countingFetch(corrupted).fn, store: freshStore() });
    await expect(store.getFile(source, source.files[0])).rejects.toThrow(IntegrityError);
    await expect(store.getFile(source, source.files[0])).rejects.toThrow(/m\/unet\/model\.onnx: sha256 mismatch.*discarded/);
    expect(await store.status(source)).toMatchObject({ complete: false, bytesStored: 0 });
  });

  it('refuses a file whose server size differs from the catalogue before storing any of it', async () => {
    const source = await sourceFor(BODY);
    const store = storeWith({ fetch: countingFetch(BODY.slice(0, 1000)).fn, store: freshStore() });
    const error = await store.getFile(source, source.files[0]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toMatch(/does not match the catalogue \(1000 bytes, expected 300000\)/);
    expect((await store.status(source)).bytesStored).toBe(0);
  });

  it('treats a body that ends early without a stated size as a broken connection', async () => {
    const source = await sourceFor(BODY);
    const short: typeof fetch = async () => new Response(BODY.slice(0, 1000) as Uint8Array<ArrayBuffer>); // no Content-Length
    const store = storeWith({ fetch: short, store: freshStore(), maxRetries: 1 });
    await expect(store.getFile(source, source.files[0])).rejects.toThrow(/sent 1000 of 300000 bytes/);
  });

  it('detects a damaged cached copy (a short chunk), drops it and fetches the file again', async () => {
    const net = countingFetch(BODY);
    const idb = freshStore();
    const source = await sourceFor(BODY);
    const store = storeWith({ fetch: net.fn, store: idb });
    await store.getFile(source, source.files[0]);
    await set(['chunk', 'm', 'unet/model.onnx', 2], new ArrayBuffer(10), idb); // a half-written chunk
    const again = await store.getFile(source, source.files[0]);
    expect(same(again, BODY)).toBe(true);
    expect(net.calls).toHaveLength(2);
  });

  it('with verifyOnRead, re-hashes a cached copy and refetches one whose bytes changed', async () => {
    const net = countingFetch(BODY);
    const idb = freshStore();
    const source = await sourceFor(BODY);
    await storeWith({ fetch: net.fn, store: idb }).getFile(source, source.files[0]);
    await set(['chunk', 'm', 'unet/model.onnx', 1], new ArrayBuffer(64 * 1024), idb); // right length, wrong bytes
    expect(same(await storeWith({ fetch: net.fn, store: idb }).getFile(source, source.files[0]), BODY)).toBe(false);
    expect(same(await storeWith({ fetch: net.fn, store: idb, verifyOnRead: true }).getFile(source, source.files[0]), BODY)).toBe(true);
    expect(net.calls).toHaveLength(2);
  });

  it('reports an HTTP error and a network failure as ModelFileError', async () => {
    const source = await sourceFor(BODY);
    const notFound = storeWith({ fetch: async () => new Response('no', { status: 404 }), store: freshStore() });
    await expect(notFound.getFile(source, source.files[0])).rejects.toThrow(/HTTP 404/);
    const offline = storeWith({ fetch: async () => { throw new TypeError('Failed to fetch'); }, store: freshStore(), maxRetries: 2 });
    await expect(offline.getFile(source, source.files[0])).rejects.toThrow(ModelFileError);
    await expect(offline.getFile(source, source.files[0])).rejects.toThrow(/download failed \(Failed to fetch\)/);
  });

  it('removes entries of the old whole-file layout, which would hold quota unseen', async () => {
    const idb = freshStore();
    await set('m/unet/model.onnx', { bytes: new ArrayBuffer(100), size: 100, sha256: 'x' }, idb);
    const store = storeWith({ fetch: countingFetch(BODY).fn, store: idb });
    expect(await store.listModels()).toEqual([]);
    const { keys } = await import('idb-keyval');
    expect(await keys(idb)).toEqual([]);
  });

  it('checkStoredFile tells damaged stored bytes (dropped, fetched again) from an intact file (kept)', async () => {
    const net = countingFetch(BODY);
    const idb = freshStore();
    const source = await sourceFor(BODY);
    const store = storeWith({ fetch: net.fn, store: idb });
    const path = source.files[0].path;
    await store.getFile(source, source.files[0]);
    expect(await store.checkStoredFile(source, path)).toEqual({ verdict: 'intact', sha256: await sha256Hex(BODY) });
    expect(net.calls).toHaveLength(1);
    // Storage goes wrong under the record: the first chunk's bytes change, its length does not.
    const chunk = BODY.slice(0, 64 * 1024);
    chunk[10] ^= 0xff;
    await set(['chunk', source.id, path, 0], chunk.buffer, idb);
    expect((await store.checkStoredFile(source, path)).verdict).toBe('damaged');
    expect(await store.checkStoredFile(source, path)).toEqual({ verdict: 'missing', sha256: null });
    expect(same(await store.getFile(source, source.files[0]), BODY)).toBe(true);
    expect(net.calls).toHaveLength(2);
    const error = new CorruptCacheError(source.id, [path], new Error('protobuf parsing failed'));
    expect(error).toBeInstanceOf(ModelFileError);
    expect(error.message).toBe(`m: the stored copy of ${path} (unet) was damaged in this browser's storage and could not be loaded (protobuf parsing failed). It was discarded and will be downloaded again.`);
  });
});
