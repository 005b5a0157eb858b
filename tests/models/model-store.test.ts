/**
 * The model store: files come from the network once, are verified (size, sha256) before they
 * count as cached, and a stored copy that no longer matches is dropped and fetched again.
 */
import 'fake-indexeddb/auto';
import { createStore, get, set } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { ModelFileError, ModelStore } from '../../src/models/model-store.ts';
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

describe('ModelStore', () => {
  it('downloads once with progress, then serves the verified copy from IndexedDB', async () => {
    const net = countingFetch(BODY);
    const idb = freshStore();
    const source = await sourceFor(BODY);
    const progress: number[] = [];
    const first = await new ModelStore({ fetch: net.fn, store: idb }).getFile(source, source.files[0], (p) => progress.push(p.loaded));
    expect(first).toEqual(BODY);
    expect(net.calls).toEqual(['http://hub.test/repo/unet/model.onnx']);
    expect(progress.at(-1)).toBe(BODY.byteLength);
    const cachedEvents: boolean[] = [];
    const second = await new ModelStore({ fetch: net.fn, store: idb }).getFile(source, source.files[0], (p) => cachedEvents.push(p.fromCache));
    expect(second).toEqual(BODY);
    expect(net.calls).toHaveLength(1);
    expect(cachedEvents).toEqual([true]);
  });

  it('refuses a download whose sha256 does not match and stores nothing', async () => {
    const corrupted = BODY.slice();
    corrupted[1234] ^= 0xff;
    const idb = freshStore();
    const source = await sourceFor(BODY);
    const store = new ModelStore({ fetch: countingFetch(corrupted).fn, store: idb });
    await expect(store.getFile(source, source.files[0])).rejects.toThrow(ModelFileError);
    await expect(store.getFile(source, source.files[0])).rejects.toThrow(/sha256 mismatch/);
    expect(await store.cachedFiles('m')).toEqual([]);
  });

  it('refuses a truncated download', async () => {
    const source = await sourceFor(BODY);
    const store = new ModelStore({ fetch: countingFetch(BODY.slice(0, 1000)).fn, store: freshStore() });
    await expect(store.getFile(source, source.files[0])).rejects.toThrow(/expected 300000 bytes, got 1000/);
  });

  it('detects a corrupted cached copy, drops it and fetches the file again', async () => {
    const net = countingFetch(BODY);
    const idb = freshStore();
    const source = await sourceFor(BODY);
    const store = new ModelStore({ fetch: net.fn, store: idb });
    await store.getFile(source, source.files[0]);
    const stored = await get<{ bytes: ArrayBuffer; size: number; sha256: string }>('m/unet/model.onnx', idb);
    await set('m/unet/model.onnx', { ...stored!, bytes: stored!.bytes.slice(0, 10) }, idb); // a half-written record
    const again = await store.getFile(source, source.files[0]);
    expect(again).toEqual(BODY);
    expect(net.calls).toHaveLength(2);
  });

  it('reports an HTTP error and a network failure as ModelFileError', async () => {
    const source = await sourceFor(BODY);
    const notFound = new ModelStore({ fetch: async () => new Response('no', { status: 404 }), store: freshStore() });
    await expect(notFound.getFile(source, source.files[0])).rejects.toThrow(/HTTP 404/);
    const offline = new ModelStore({ fetch: async () => { throw new TypeError('Failed to fetch'); }, store: freshStore() });
    await expect(offline.getFile(source, source.files[0])).rejects.toThrow(/download failed \(Failed to fetch\)/);
  });
});
