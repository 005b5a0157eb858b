/**
 * Resumable, verified downloads against the mock hub on loopback (real HTTP, 302 to a CDN
 * path, Range, faults) into fake IndexedDB: progress, resume after a cut and after a reload,
 * pause, corruption, quota, listing, deletion, marking a file bad.
 */
import 'fake-indexeddb/auto';
import { createStore, type UseStore } from 'idb-keyval';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DownloadError, DownloadPaused, FileTooLargeError, IntegrityError, ModelStore, QuotaError, type ModelStoreOptions, type StorageLike,
} from '../../src/models/model-store.ts';
import type { DownloadProgress, ModelSource } from '../../src/models/model-source.ts';
import { sha256Hex } from '../../src/models/sha256.ts';
import { startMockHub, syntheticBytes, type HubRequest, type MockHub } from '../support/mock-hub.ts';

const CHUNK = 64 * 1024;

/**
 * The byte a resumed request starts at: the end of a whole stored chunk, after the first chunk and
 * not past the cut. How many whole chunks get stored before a cut is the client's business: a
 * connection that closes early errors the body stream, which drops what the reader had not taken
 * yet (a reader busy writing a chunk to IndexedDB takes the next bytes late), so a cut after 150000
 * bytes may leave one chunk stored or two. Either way no stored byte is fetched twice.
 */
function chunkBoundaryOf(range: string | null | undefined, cutAfter: number): number {
  const start = /^bytes=(\d+)-$/.exec(range ?? '');
  expect(start, `a Range request resuming a cut at ${cutAfter}, got ${range}`).not.toBeNull();
  const at = Number(start![1]);
  expect(at % CHUNK).toBe(0);
  expect(at).toBeGreaterThanOrEqual(CHUNK);
  expect(at).toBeLessThanOrEqual(cutAfter);
  return at;
}
const UNET = syntheticBytes(300_000, 1); // 4 full chunks and a 37856-byte tail
const CONFIG = new TextEncoder().encode('{"_class_name": "EulerDiscreteScheduler"}');
const OTHER = syntheticBytes(100_000, 2);

let hub: MockHub;
let storeCount = 0;

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const freshIdb = () => createStore(`download-test-${storeCount++}`, 'files');
const storeOn = (idb: UseStore, options: ModelStoreOptions = {}) =>
  new ModelStore({ store: idb, chunkSize: CHUNK, storage: null, retryDelayMs: 0, progressIntervalMs: 0, ...options });

/** The catalogue entry; `withFacts: false` leaves size and sha256 to the hub's headers. */
async function modelSource(withFacts = true, id = 'test/model'): Promise<ModelSource> {
  const facts = async (bytes: Uint8Array) => (withFacts ? { size: bytes.byteLength, sha256: await sha256Hex(bytes) } : {});
  return {
    id,
    baseUrl: hub.baseUrl(id === 'test/other' ? 'test/other' : 'test/model'),
    files: id === 'test/other'
      ? [{ path: 'blob.bin', ...(await facts(OTHER)) }]
      : [{ path: 'scheduler/scheduler_config.json', ...(await facts(CONFIG)) }, { path: 'unet/model.onnx', ...(await facts(UNET)) }],
  };
}

const unetGets = (): HubRequest[] => hub.requests.filter((r) => r.kind === 'resolve' && r.method === 'GET' && r.file === 'test/model/unet/model.onnx');
const networkRequests = () => hub.requests.filter((r) => r.kind === 'resolve' || r.kind === 'cdn');

beforeAll(async () => {
  hub = await startMockHub({
    repo: 'test/model',
    files: { 'scheduler/scheduler_config.json': CONFIG, 'unet/model.onnx': UNET },
    repos: { 'test/other': { 'blob.bin': OTHER } },
  });
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.clearFaults();
  hub.requests.length = 0;
});

describe('ModelStore.download from the mock hub', () => {
  it('downloads every file with progress in bytes, speed and ETA, reading sizes and sha256 from the hub', async () => {
    const source = await modelSource(false);
    hub.setFault('unet/model.onnx', { bytesPerSecond: 1_000_000 }); // ~0.3 s, so the speed has samples
    const events: DownloadProgress[] = [];
    const store = storeOn(freshIdb());
    await store.download(source, { onProgress: (p) => events.push(p) });

    // sizes came from HEAD (final CDN response: Content-Length, ETag) before any body was fetched
    const heads = hub.requests.filter((r) => r.method === 'HEAD' && r.kind === 'resolve');
    expect(heads.map((r) => r.file).sort()).toEqual(['test/model/scheduler/scheduler_config.json', 'test/model/unet/model.onnx']);
    const total = CONFIG.byteLength + UNET.byteLength;
    const unetEvents = events.filter((e) => e.file === 'unet/model.onnx');
    expect(unetEvents.every((e) => e.total === UNET.byteLength && e.modelTotal === total && !e.fromCache)).toBe(true);
    const loaded = unetEvents.map((e) => e.loaded);
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
    expect(loaded.at(-1)).toBe(UNET.byteLength);
    const midway = unetEvents.filter((e) => e.loaded > CHUNK && e.loaded < UNET.byteLength);
    expect(midway.length).toBeGreaterThan(2);
    for (const e of midway) {
      expect(e.bytesPerSecond).toBeGreaterThan(200_000);
      expect(e.bytesPerSecond).toBeLessThan(5_000_000);
      expect(e.etaSeconds).toBeGreaterThan(0);
      // ETA = what the model still lacks at the current speed
      expect(e.etaSeconds).toBeCloseTo((total - e.modelLoaded!) / e.bytesPerSecond!, 6);
    }
    expect(unetEvents.some((e) => e.verifying)).toBe(true);
    expect(events.at(-1)).toMatchObject({ modelLoaded: total, modelTotal: total, etaSeconds: 0 });

    const status = await store.status(source);
    expect(status).toEqual({
      complete: true,
      bytesStored: total,
      bytesTotal: total,
      files: [
        { path: 'scheduler/scheduler_config.json', size: CONFIG.byteLength, stored: CONFIG.byteLength, complete: true },
        { path: 'unet/model.onnx', size: UNET.byteLength, stored: UNET.byteLength, complete: true },
      ],
    });
    hub.requests.length = 0;
    expect(same(await store.getFile(source, source.files[1]), UNET)).toBe(true);
    expect(hub.requests).toEqual([]);
  });

  it('resumes a cut connection with a Range request from the last stored chunk', async () => {
    const source = await modelSource();
    hub.setFault('unet/model.onnx', { cutAfter: 150_000 });
    const bytes = await storeOn(freshIdb()).getFile(source, source.files[1]);
    expect(same(bytes, UNET)).toBe(true);
    // 150000 bytes were sent: the rest is asked for from the end of the last whole chunk stored
    const ranges = unetGets().map((r) => r.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeNull();
    const resumedAt = chunkBoundaryOf(ranges[1], 150_000);
    const cdn = hub.requests.filter((r) => r.kind === 'cdn' && r.file === 'test/model/unet/model.onnx');
    expect(cdn.map((r) => [r.status, r.range])).toEqual([[200, null], [206, `bytes=${resumedAt}-`]]);
  });

  it('resumes in a new ModelStore instance (a page reload) instead of starting over', async () => {
    const source = await modelSource();
    const idb = freshIdb();
    hub.setFault('unet/model.onnx', { cutAfter: 200_000 });
    const error = await storeOn(idb, { maxRetries: 0 }).download(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    const broke = /unet\/model\.onnx: the connection broke after (\d+) bytes.* (\d+) bytes are stored/.exec((error as Error).message);
    expect(broke, (error as Error).message).not.toBeNull();
    const stored = chunkBoundaryOf(`bytes=${broke![2]}-`, 200_000);
    expect(Number(broke![1])).toBeGreaterThanOrEqual(stored);
    expect((await storeOn(idb).status(source)).files[1]).toEqual({ path: 'unet/model.onnx', size: UNET.byteLength, stored, complete: false });

    hub.requests.length = 0;
    const reloaded = storeOn(idb);
    await reloaded.download(source);
    expect(unetGets().map((r) => r.range)).toEqual([`bytes=${stored}-`]);
    expect(networkRequests().some((r) => r.file === 'test/model/scheduler/scheduler_config.json')).toBe(false);
    expect(same(await reloaded.getFile(source, source.files[1]), UNET)).toBe(true);
  });

  it('pauses when the signal aborts, keeps the stored chunks and resumes from them', async () => {
    const source = await modelSource();
    const idb = freshIdb();
    hub.setFault('unet/model.onnx', { bytesPerSecond: 400_000 });
    const controller = new AbortController();
    const paused = await storeOn(idb).download(source, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === 'unet/model.onnx' && p.loaded >= 140_000) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(paused).toBeInstanceOf(DownloadPaused);
    expect((paused as DownloadPaused).name).toBe('AbortError');
    expect((paused as DownloadPaused).cancelled).toBe(false);
    const stored = (await storeOn(idb).status(source)).files[1].stored;
    expect(stored).toBeGreaterThanOrEqual(2 * CHUNK);
    expect(stored % CHUNK).toBe(0);
    expect(stored).toBeLessThan(UNET.byteLength);

    hub.clearFaults();
    hub.requests.length = 0;
    await storeOn(idb).download(source);
    expect(unetGets().map((r) => r.range)).toEqual([`bytes=${stored}-`]);
    expect((await storeOn(idb).status(source)).complete).toBe(true);
  });

  it('detects a corrupted byte, discards the file, says so and hands nothing out', async () => {
    const source = await modelSource();
    const store = storeOn(freshIdb());
    hub.setFault('unet/model.onnx', { corruptAt: 200_000 });
    const error = await store.download(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).path).toBe('unet/model.onnx');
    expect((error as Error).message).toMatch(/^test\/model\/unet\/model\.onnx: sha256 mismatch \(expected [0-9a-f]{64}, got [0-9a-f]{64}\); the file was discarded/);
    const status = await store.status(source);
    expect(status.complete).toBe(false);
    expect(status.files[1]).toMatchObject({ stored: 0, complete: false });
    expect(status.files[0].complete).toBe(true); // the good file stays
    await expect(store.getFile(source, source.files[1])).rejects.toThrow(IntegrityError);
    expect((await store.listModels())[0]).toMatchObject({ id: 'test/model', complete: false });

    hub.clearFaults();
    expect(same(await store.getFile(source, source.files[1]), UNET)).toBe(true);
    expect((await store.status(source)).complete).toBe(true);
  });

  it('refuses to start when the bytes still to fetch exceed the free quota, and asks for persistence', async () => {
    const calls: string[] = [];
    const storage: StorageLike = {
      estimate: async () => (calls.push('estimate'), { quota: 1_000_000, usage: 900_000 }),
      persist: async () => (calls.push('persist'), true),
    };
    const source = await modelSource(false); // sizes only from the hub's HEAD
    const store = storeOn(freshIdb(), { storage });
    const error = await store.download(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaError);
    expect((error as QuotaError).neededBytes).toBe(CONFIG.byteLength + UNET.byteLength);
    expect((error as QuotaError).availableBytes).toBe(100_000);
    expect((error as Error).message).toBe(
      'Not enough storage for test/model: 300.0 kB still to download, but only 100.0 kB is free for this site ' +
        '(quota 1.0 MB, 900.0 kB used). Delete cached models or other site data, then try again.',
    );
    expect(calls).toEqual(['persist', 'estimate']);
    expect(networkRequests().filter((r) => r.method === 'GET')).toEqual([]);
    // getFile checks the same way before fetching
    await expect(store.getFile(source, source.files[1])).rejects.toThrow(QuotaError);
    expect(networkRequests().filter((r) => r.method === 'GET')).toEqual([]);
  });

  it('counts only what is still missing against the quota', async () => {
    const idb = freshIdb();
    const source = await modelSource();
    await storeOn(idb).getFile(source, source.files[1]);
    const storage: StorageLike = { estimate: async () => ({ quota: 1_000_000, usage: 999_000 }) };
    await storeOn(idb, { storage }).download(source); // only the 41-byte config is left
    expect((await storeOn(idb).status(source)).complete).toBe(true);
  });

  it('lists cached models with their sizes and deletes one without touching the other', async () => {
    const idb = freshIdb();
    const store = storeOn(idb);
    const model = await modelSource();
    const other = await modelSource(true, 'test/other');
    await store.download(model);
    await store.download(other);
    expect(await store.listModels()).toEqual([
      { id: 'test/model', bytes: CONFIG.byteLength + UNET.byteLength, complete: true, files: 2 },
      { id: 'test/other', bytes: OTHER.byteLength, complete: true, files: 1 },
    ]);
    await store.deleteModel('test/model');
    expect(await store.listModels()).toEqual([{ id: 'test/other', bytes: OTHER.byteLength, complete: true, files: 1 }]);
    expect((await store.status(model)).bytesStored).toBe(0);
    hub.requests.length = 0;
    expect(same(await storeOn(idb).getFile(other, other.files[0]), OTHER)).toBe(true);
    expect(hub.requests).toEqual([]);
  });

  it('refuses a single file over 2 GB before fetching anything: no browser could load it', async () => {
    const source = await modelSource();
    const big: ModelSource = { ...source, files: [...source.files, { path: 'unet/model.onnx_data', size: 2 ** 31 + 10, url: `${hub.url}/test/model/resolve/main/unet/model.onnx_data` }] };
    hub.requests.length = 0;
    const error = await storeOn(freshIdb()).download(big).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileTooLargeError);
    expect((error as Error).message).toMatch(/unet\/model\.onnx_data is 2\.\d+ GB in one file\. A browser cannot hold more than 2 GB in one buffer/);
    expect(networkRequests()).toEqual([]);
  });

  it('getFile on a complete model makes no request and reports the cache', async () => {
    const idb = freshIdb();
    const source = await modelSource(false);
    await storeOn(idb).download(source);
    hub.requests.length = 0;
    const events: DownloadProgress[] = [];
    const store = storeOn(idb);
    for (const file of source.files) await store.getFile(source, file, (p) => events.push(p));
    expect(hub.requests).toEqual([]);
    expect(events.map((e) => [e.file, e.fromCache, e.loaded])).toEqual([
      ['scheduler/scheduler_config.json', true, CONFIG.byteLength],
      ['unet/model.onnx', true, UNET.byteLength],
    ]);
    const again: DownloadProgress[] = [];
    await store.download(source, { onProgress: (p) => again.push(p) });
    expect(hub.requests).toEqual([]);
    expect(again.every((e) => e.fromCache)).toBe(true);
  });

  it('retries a server error and gives up with the status when it persists', async () => {
    const source = await modelSource();
    hub.setFault('unet/model.onnx', { status: 500, statusTimes: 2 });
    expect(same(await storeOn(freshIdb()).getFile(source, source.files[1]), UNET)).toBe(true);
    expect(unetGets().map((r) => r.status)).toEqual([500, 500, 302]);

    hub.setFault('unet/model.onnx', { status: 503, statusTimes: -1 });
    const error = await storeOn(freshIdb(), { maxRetries: 2 }).getFile(source, source.files[1]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).status).toBe(503);
    expect((error as Error).message).toBe('test/model/unet/model.onnx: download failed with HTTP 503');
  });

  it('starts over when the server answers a Range request with the whole file', async () => {
    const source = await modelSource();
    hub.setFault('unet/model.onnx', { cutAfter: 150_000, ignoreRange: true });
    expect(same(await storeOn(freshIdb()).getFile(source, source.files[1]), UNET)).toBe(true);
    const cdn = hub.requests.filter((r) => r.kind === 'cdn' && r.file === 'test/model/unet/model.onnx');
    expect(cdn.map((r) => r.status)).toEqual([200, 200]);
    expect(cdn[0].range).toBeNull();
    chunkBoundaryOf(cdn[1].range, 150_000);
  });

  it('fails fast when the hub states another size than the catalogue', async () => {
    const source = await modelSource();
    source.files[1] = { ...source.files[1], size: UNET.byteLength + 1 };
    const store = storeOn(freshIdb());
    await expect(store.getFile(source, source.files[1])).rejects.toThrow(/does not match the catalogue \(300000 bytes, expected 300001\)/);
    expect((await store.status(source)).files[1].stored).toBe(0);
  });

  it('cancel stops a running download and discards its partial files, keeping complete ones', async () => {
    const idb = freshIdb();
    const store = storeOn(idb);
    const source = await modelSource();
    hub.setFault('unet/model.onnx', { bytesPerSecond: 300_000 });
    let cancelling: Promise<void> | null = null;
    const result = await store.download(source, {
      onProgress: (p) => {
        if (p.file === 'unet/model.onnx' && p.loaded > 2 * CHUNK) cancelling ??= store.cancel(source);
      },
    }).catch((e: unknown) => e);
    await cancelling;
    expect(result).toBeInstanceOf(DownloadPaused);
    expect((result as DownloadPaused).cancelled).toBe(true);
    const status = await store.status(source);
    expect(status.files).toEqual([
      { path: 'scheduler/scheduler_config.json', size: CONFIG.byteLength, stored: CONFIG.byteLength, complete: true },
      { path: 'unet/model.onnx', size: UNET.byteLength, stored: 0, complete: false },
    ]);
    const { keys } = await import('idb-keyval');
    expect((await keys(idb)).filter((k) => Array.isArray(k) && k[0] === 'chunk' && k[2] === 'unet/model.onnx')).toEqual([]);
  });

  it('serves two concurrent callers of the same file with one download', async () => {
    const store = storeOn(freshIdb());
    const source = await modelSource();
    const [a, b] = await Promise.all([store.getFile(source, source.files[1]), store.download(source).then(() => store.getFile(source, source.files[1]))]);
    expect(same(a, UNET) && same(b, UNET)).toBe(true);
    expect(unetGets()).toHaveLength(1);
  });

  it('finishes a file once every stated byte is in, even when the server never ends the body', async () => {
    const source = await modelSource();
    // the hub's bytes, from a body that is never closed (a server or proxy holding the connection open)
    const heldOpen: typeof fetch = async (input, init) => {
      const real = await fetch(input, init);
      const bytes = new Uint8Array(await real.arrayBuffer());
      const body = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(bytes) });
      return new Response(body, { status: real.status, headers: real.headers });
    };
    const store = storeOn(freshIdb(), { fetch: heldOpen });
    await store.download(source);
    expect(same(await store.getFile(source, source.files[1]), UNET)).toBe(true);
  });

  it('does nothing for a signal that is already aborted', async () => {
    const source = await modelSource();
    const controller = new AbortController();
    controller.abort();
    await expect(storeOn(freshIdb()).download(source, { signal: controller.signal })).rejects.toBeInstanceOf(DownloadPaused);
    expect(networkRequests()).toEqual([]);
  });

  it('takes faults over HTTP, as browser tests set them, and reports its requests and manifest', async () => {
    const post = await fetch(`${hub.url}/_fault`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ path: 'unet/model.onnx', cutAfter: 100_000 }) });
    expect(post.status).toBe(200);
    const source = await modelSource();
    expect(same(await storeOn(freshIdb()).getFile(source, source.files[1]), UNET)).toBe(true);
    const logged = (await (await fetch(`${hub.url}/_requests`)).json()) as HubRequest[];
    // the cut came over HTTP: a second request followed the first (from byte 0 or 65536, see chunkBoundaryOf)
    const resolves = logged.filter((r) => r.kind === 'resolve').map((r) => r.range);
    expect(resolves).toHaveLength(2);
    expect(resolves[0]).toBeNull();
    expect([null, `bytes=${CHUNK}-`]).toContain(resolves[1]);
    const manifest = (await (await fetch(`${hub.url}/_manifest`)).json()) as ReturnType<MockHub['manifest']>;
    expect(manifest['test/model'].files.find((f) => f.path === 'unet/model.onnx')).toEqual({
      path: 'unet/model.onnx', size: UNET.byteLength, sha256: await sha256Hex(UNET), url: hub.resolveUrl('unet/model.onnx'),
    });
    expect((await fetch(`${hub.url}/_fault`, { method: 'DELETE' })).status).toBe(200);
  });
});
