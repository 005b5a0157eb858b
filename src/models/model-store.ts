/**
 * Model files cached in IndexedDB as chunks, downloaded resumably and verified before use.
 *
 * API (all methods are async; `source` is a ModelSource from the catalogue):
 *   new ModelStore({ fetch?, store?, chunkSize? = 8 MiB, storage? = navigator.storage, maxRetries? = 5,
 *                    retryDelayMs? = 1000, progressIntervalMs? = 100, verifyOnRead? = false })
 *   download(source, { onProgress?, signal? }): Promise<void>
 *       Every file of the model, resuming what is stored. Before fetching it HEADs files of unknown
 *       size, requests persistent storage and checks navigator.storage.estimate() against the bytes
 *       still to fetch. Rejects with QuotaError (needed vs free, in MB/GB), IntegrityError (size or
 *       sha256 mismatch: that file's chunks are gone, the message names the file), DownloadError
 *       (HTTP/network after retries, `.status` when there was a response; stored chunks kept), or
 *       DownloadPaused (name "AbortError") when the signal aborts: stored chunks are kept and the
 *       next download() or getFile() resumes from the last stored chunk, also in a new instance.
 *   getFile(source, file, onProgress?, { signal? }?): Promise<Uint8Array>
 *       The engine's entry: the complete, verified bytes in one buffer of the file's size, read
 *       chunk by chunk from IndexedDB; what is missing is downloaded first (same errors as above;
 *       the quota check covers the bytes the whole model still lacks). A cache hit makes no request
 *       and reports one event with fromCache: true. A stored file whose chunks are missing or of
 *       the wrong length is dropped and fetched again.
 *   cancel(source): Promise<void>
 *       Stops this model's running downloads (they reject with DownloadPaused, `cancelled: true`)
 *       and discards every file of it that is not complete. Complete, verified files stay: they
 *       are valid and would only be fetched again; deleteModel frees them.
 *   status(source): Promise<ModelStatus>      what is stored of each file; no network
 *   listModels(): Promise<CachedModel[]>      every model with a recorded file list, with its stored bytes
 *   deleteModel(id): Promise<void>            stops its downloads, removes all its chunks and records
 *   checkStoredFile(source, path): Promise<{ verdict: 'damaged' | 'intact' | 'missing', sha256 }>
 *       For a file that failed to load: re-reads and hashes it. 'damaged' (its bytes are not what
 *       was verified when it was stored): it is dropped, so the next read fetches it again.
 *       'intact': the stored bytes are exactly what arrived and was verified, so the file itself is
 *       broken and fetching it again would not help.
 * Persistent storage: download() and getFile() call storage.persist() once per instance where it
 * exists; in a worker it does not (persist() is main-thread only), so the UI should call
 * requestPersistentStorage() itself.
 * A file counts as complete only after its chunks were re-read and matched its size and sha256
 * (from the catalogue, else from the hub's X-Linked-Size / X-Linked-Etag, Content-Length or a
 * 64-hex ETag); a model is usable only when all its files are complete.
 */
import { createStore, type UseStore } from 'idb-keyval';
import { ChunkStore, type FileRecord } from './chunk-store.ts';
import { DownloadError, DownloadPaused, FileTooLargeError, IntegrityError, MAX_FILE_BYTES, QuotaError } from './download-errors.ts';
import { fetchIntoChunks, readStoredFile } from './file-transfer.ts';
import { huggingFaceFacts, isHuggingFaceUrl, serverFacts, type ServerFacts } from './hub-metadata.ts';
import type { ModelFile, ModelSource } from './model-source.ts';
import { ProgressReporter, type ProgressListener } from './progress.ts';
import { defaultStorage, requestPersistentStorage, storageRoom, type StorageLike } from './quota.ts';

export { BrokenModelFileError, componentOf, CorruptCacheError, DownloadError, DownloadPaused, FileTooLargeError, IntegrityError, MAX_FILE_BYTES, ModelFileError, QuotaError } from './download-errors.ts';
export { formatBytes, requestPersistentStorage, type StorageLike } from './quota.ts';

export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

export interface ModelStoreOptions {
  fetch?: typeof fetch;
  /** The idb-keyval store; default database "sd-models", object store "files". */
  store?: UseStore;
  /** Bytes per stored chunk; also the most a broken connection costs. */
  chunkSize?: number;
  /** StorageManager-like; default navigator.storage where present. null skips quota checks. */
  storage?: StorageLike | null;
  /** Consecutive failed attempts (no chunk stored in between) before a DownloadError. */
  maxRetries?: number;
  /** Wait before retry n: n times this. */
  retryDelayMs?: number;
  /** Least time between two throttled progress events. */
  progressIntervalMs?: number;
  /** Re-hash cached files on every getFile (costly for GB files; size and chunk checks always run). */
  verifyOnRead?: boolean;
}

export interface DownloadOptions {
  onProgress?: ProgressListener;
  /** Aborting pauses: stored chunks are kept. */
  signal?: AbortSignal;
}

export interface FileStatus {
  path: string;
  size: number | null;
  stored: number;
  complete: boolean;
}

export interface ModelStatus {
  complete: boolean;
  bytesStored: number;
  /** null while a file's size is unknown. */
  bytesTotal: number | null;
  files: FileStatus[];
}

export interface CachedModel {
  id: string;
  /** Bytes stored for it, partial files included. */
  bytes: number;
  /** Every file of its recorded list is complete. */
  complete: boolean;
  /** Files in its recorded list. */
  files: number;
}

interface Operation {
  controller: AbortController;
  cancelled: boolean;
  settled: Promise<unknown>;
}

/** Whether a stored record belongs to another version of the file than the catalogue names. */
function conflicts(rec: FileRecord, file: ModelFile): boolean {
  return (file.size !== undefined && rec.size !== null && rec.size !== file.size)
    || (file.sha256 !== undefined && rec.sha256 !== null && rec.sha256 !== file.sha256.toLowerCase());
}

function fileUrl(source: ModelSource, file: ModelFile): string {
  return file.url ?? new URL(file.path, source.baseUrl).href;
}

export class ModelStore {
  private readonly fetchFn: typeof fetch;
  private readonly chunks: ChunkStore;
  private readonly chunkSize: number;
  private readonly storage: StorageLike | null;
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;
  private readonly progressIntervalMs: number;
  private readonly verifyOnRead: boolean;
  private readonly active = new Map<string, Set<Operation>>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly recordedLists = new Map<string, string>();
  private legacyCleared: Promise<void> | null = null;
  private persistRequested = false;
  /** Hugging Face tree listings already asked for, by API URL. */
  private readonly hubListings = new Map<string, Promise<unknown>>();

  constructor(options: ModelStoreOptions = {}) {
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.chunks = new ChunkStore(options.store ?? createStore('sd-models', 'files'));
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer, got ${options.chunkSize}`);
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    this.maxRetries = options.maxRetries ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.progressIntervalMs = options.progressIntervalMs ?? 100;
    this.verifyOnRead = options.verifyOnRead ?? false;
  }

  async download(source: ModelSource, options: DownloadOptions = {}): Promise<void> {
    await this.prepare(source);
    await this.operate(source.id, options.signal, async (op) => {
      const records = await this.chunks.files(source.id);
      const done: ModelFile[] = [];
      const todo: ModelFile[] = [];
      for (const file of source.files) {
        const rec = records.get(file.path);
        (rec?.complete && !conflicts(rec, file) ? done : todo).push(file);
      }
      // sizes first: the quota check needs them, and the hub states them without sending the body
      for (const file of todo) {
        const rec = records.get(file.path);
        if (file.size !== undefined || (rec && !conflicts(rec, file) && rec.size !== null)) continue;
        if (op.controller.signal.aborted) throw this.paused(source.id, op);
        records.set(file.path, await this.openRecord(source.id, file, await this.probe(source, file, op)));
      }
      // A file no browser can load is refused before any byte of the model is fetched.
      for (const file of source.files) {
        const rec = records.get(file.path);
        const size = file.size ?? (rec && !conflicts(rec, file) ? rec.size : null);
        if (size !== null && size > MAX_FILE_BYTES) throw new FileTooLargeError(source.id, file.path, size);
      }
      const reporter = this.reporter(source, options.onProgress, records);
      await this.ensureRoom(source, records);
      for (const file of done) {
        const size = records.get(file.path)?.size ?? 0;
        reporter.report(file.path, size, size, { fromCache: true, force: true });
      }
      for (const file of todo) await this.ensureFile(source, file, op, reporter, false);
    });
  }

  async getFile(source: ModelSource, file: ModelFile, onProgress?: ProgressListener, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    await this.prepare(source);
    return this.operate(source.id, options.signal, async (op) => {
      const reporter = this.reporter(source, onProgress, onProgress ? await this.chunks.files(source.id) : new Map());
      const bytes = await this.ensureFile(source, file, op, reporter, true);
      if (!bytes) throw new Error('unreachable: ensureFile returns bytes when asked');
      return bytes;
    });
  }

  async cancel(source: ModelSource): Promise<void> {
    await this.stopActive(source.id);
    const records = await this.chunks.files(source.id);
    for (const [path, rec] of records) {
      if (!rec.complete) await this.withFileLock(source.id, path, () => this.chunks.dropFile(source.id, path));
    }
    if ([...records.values()].every((r) => !r.complete)) {
      await this.chunks.dropModel(source.id);
      this.recordedLists.delete(source.id);
    }
  }

  async status(source: ModelSource): Promise<ModelStatus> {
    const records = await this.chunks.files(source.id);
    const files = source.files.map((file): FileStatus => {
      const found = records.get(file.path);
      const rec = found && !conflicts(found, file) ? found : undefined;
      return { path: file.path, size: file.size ?? rec?.size ?? null, stored: rec?.bytesStored ?? 0, complete: rec?.complete ?? false };
    });
    const sizes = files.map((f) => f.size);
    return {
      complete: files.every((f) => f.complete),
      bytesStored: files.reduce((a, f) => a + f.stored, 0),
      bytesTotal: sizes.every((s) => s !== null) ? sizes.reduce<number>((a, s) => a + (s ?? 0), 0) : null,
      files,
    };
  }

  async listModels(): Promise<CachedModel[]> {
    await this.clearLegacy();
    const out: CachedModel[] = [];
    for (const model of await this.chunks.models()) {
      const records = await this.chunks.files(model.id);
      let bytes = 0;
      for (const rec of records.values()) bytes += rec.bytesStored;
      const complete = model.files.every((f) => {
        const rec = records.get(f.path);
        return rec !== undefined && rec.complete && !conflicts(rec, f);
      });
      out.push({ id: model.id, bytes, complete, files: model.files.length });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async deleteModel(id: string): Promise<void> {
    await this.stopActive(id);
    await this.chunks.dropModel(id);
    this.recordedLists.delete(id);
  }

  async checkStoredFile(source: ModelSource, path: string): Promise<{ verdict: 'damaged' | 'intact' | 'missing'; sha256: string | null }> {
    return this.withFileLock(source.id, path, async () => {
      const rec = await this.chunks.getFile(source.id, path);
      if (!rec) return { verdict: 'missing', sha256: null };
      const read = rec.complete ? await readStoredFile(this.chunks, source.id, path, rec, { hash: true }) : { problem: 'incomplete', sha256: null };
      if (read.problem === null) return { verdict: 'intact', sha256: read.sha256 };
      await this.chunks.dropFile(source.id, path);
      return { verdict: 'damaged', sha256: read.sha256 };
    });
  }

  /** One-time cleanup and the model's file list, recorded so listModels knows what "complete" means. */
  private async prepare(source: ModelSource): Promise<void> {
    await this.clearLegacy();
    const list = JSON.stringify({ baseUrl: source.baseUrl, files: source.files });
    if (this.recordedLists.get(source.id) === list) return;
    const stored = await this.chunks.getModel(source.id);
    if (!stored || JSON.stringify({ baseUrl: stored.baseUrl, files: stored.files }) !== list) {
      await this.chunks.putModel({ id: source.id, baseUrl: source.baseUrl, files: source.files, updatedAt: Date.now() });
    }
    this.recordedLists.set(source.id, list);
  }

  private clearLegacy(): Promise<void> {
    this.legacyCleared ??= this.chunks.dropLegacyEntries();
    return this.legacyCleared;
  }

  /** Runs work under an AbortController that the caller's signal, cancel() and deleteModel() abort. */
  private async operate<T>(modelId: string, signal: AbortSignal | undefined, work: (op: Operation) => Promise<T>): Promise<T> {
    if (signal?.aborted) throw new DownloadPaused(modelId);
    const controller = new AbortController();
    const op: Operation = { controller, cancelled: false, settled: Promise.resolve() };
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const ops = this.active.get(modelId) ?? new Set<Operation>();
    this.active.set(modelId, ops);
    ops.add(op);
    const running = work(op);
    op.settled = running.catch(() => undefined);
    try {
      return await running;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      ops.delete(op);
      if (ops.size === 0 && this.active.get(modelId) === ops) this.active.delete(modelId);
    }
  }

  private async stopActive(modelId: string): Promise<void> {
    const ops = [...(this.active.get(modelId) ?? [])];
    for (const op of ops) {
      op.cancelled = true;
      op.controller.abort();
    }
    await Promise.all(ops.map((op) => op.settled));
  }

  private paused(modelId: string, op: Operation): DownloadPaused {
    return new DownloadPaused(modelId, op.cancelled);
  }

  /** Progress for the model, starting from what its records say is stored. */
  private reporter(source: ModelSource, listener: ProgressListener | undefined, records: Map<string, FileRecord>): ProgressReporter {
    let total: number | null = 0;
    const reporter = new ProgressReporter(source.id, listener, null, this.progressIntervalMs);
    for (const file of source.files) {
      const found = records.get(file.path);
      const rec = found && !conflicts(found, file) ? found : undefined;
      reporter.setFileLoaded(file.path, rec?.bytesStored ?? 0);
      const size = file.size ?? rec?.size ?? null;
      total = total === null || size === null ? null : total + size;
    }
    reporter.setModelTotal(total);
    return reporter;
  }

  /** Serialises work on one file within this instance, so two callers never write its chunks at once. */
  private async withFileLock<T>(modelId: string, path: string, work: () => Promise<T>): Promise<T> {
    const key = JSON.stringify([modelId, path]);
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.locks.set(key, mine);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.locks.get(key) === mine) this.locks.delete(key);
    }
  }

  /** The file's record, created (with the catalogue's facts, else the server's) or brought in line with the catalogue. */
  private async openRecord(modelId: string, file: ModelFile, facts?: ServerFacts): Promise<FileRecord> {
    const size = file.size ?? null;
    const sha256 = file.sha256?.toLowerCase() ?? null;
    const existing = await this.chunks.getFile(modelId, file.path);
    if (existing && !conflicts(existing, file)) {
      const merged: FileRecord = { ...existing, size: size ?? existing.size ?? facts?.size ?? null, sha256: sha256 ?? existing.sha256 ?? facts?.sha256 ?? null };
      if (merged.size !== existing.size || merged.sha256 !== existing.sha256) await this.chunks.putFile(modelId, file.path, merged);
      return merged;
    }
    // stored bytes of another version of the file are of no use
    if (existing) await this.chunks.dropFile(modelId, file.path);
    const fresh: FileRecord = {
      size: size ?? facts?.size ?? null,
      sha256: sha256 ?? facts?.sha256 ?? null,
      chunkSize: this.chunkSize,
      chunks: 0,
      bytesStored: 0,
      complete: false,
    };
    await this.chunks.putFile(modelId, file.path, fresh);
    return fresh;
  }

  /** HEAD of the file's URL: the hub states size and sha256 without the body. Unhelpful answers give no facts. */
  private async probe(source: ModelSource, file: ModelFile, op: Operation): Promise<ServerFacts> {
    const name = `${source.id}/${file.path}`;
    let response: Response;
    try {
      response = await this.fetchFn(fileUrl(source, file), { method: 'HEAD', signal: op.controller.signal });
    } catch (e) {
      if (op.controller.signal.aborted) throw this.paused(source.id, op);
      throw new DownloadError(`${name}: could not reach the server (${e instanceof Error ? e.message : String(e)})`, undefined, { cause: e });
    }
    await response.body?.cancel().catch(() => undefined);
    if ([401, 403, 404, 410].includes(response.status)) throw new DownloadError(`${name}: download failed with HTTP ${response.status}`, response.status);
    const url = fileUrl(source, file);
    const facts = response.ok ? serverFacts(response, url) : { size: null, sha256: null };
    if (facts.sha256 !== null || !isHuggingFaceUrl(url)) return facts;
    const hub = await huggingFaceFacts(url, this.fetchFn, this.hubListings);
    return { size: facts.size ?? hub?.size ?? null, sha256: hub?.sha256 ?? null };
  }

  /** Asks for persistent storage, then refuses when the bytes the model still lacks exceed the free quota. */
  private async ensureRoom(source: ModelSource, records: Map<string, FileRecord>): Promise<void> {
    if (!this.storage) return;
    if (!this.persistRequested && this.storage.persist) {
      this.persistRequested = true;
      // a refusal only means the cache may be evicted under pressure; the download can go on
      await requestPersistentStorage(this.storage);
    }
    let needed = 0;
    for (const file of source.files) {
      const found = records.get(file.path);
      const rec = found && !conflicts(found, file) ? found : undefined;
      if (rec?.complete) continue;
      const size = file.size ?? rec?.size ?? null;
      if (size !== null) needed += Math.max(0, size - (rec?.bytesStored ?? 0));
    }
    if (needed === 0) return;
    const room = await storageRoom(this.storage);
    if (room.available !== null && needed > room.available) {
      throw QuotaError.forModel(source.id, needed, room.available, room.quota ?? 0, room.usage ?? 0);
    }
  }

  /**
   * Makes the file complete: a verified cached copy is used as is (read into one buffer when
   * `wantBytes`), anything else is fetched into chunks, re-read, hashed and only then marked complete.
   */
  private ensureFile(source: ModelSource, file: ModelFile, op: Operation, reporter: ProgressReporter, wantBytes: boolean): Promise<Uint8Array | null> {
    const { id } = source;
    return this.withFileLock(id, file.path, async () => {
      if (op.controller.signal.aborted) throw this.paused(id, op);
      const cached = await this.chunks.getFile(id, file.path);
      if (cached?.complete && !conflicts(cached, file) && cached.size !== null) {
        if (!wantBytes) {
          reporter.report(file.path, cached.size, cached.size, { fromCache: true, force: true });
          return null;
        }
        const target = new Uint8Array(cached.size);
        const read = await readStoredFile(this.chunks, id, file.path, cached, { hash: this.verifyOnRead, target });
        if (read.problem === null) {
          reporter.report(file.path, cached.size, cached.size, { fromCache: true, force: true });
          return target;
        }
        // a damaged cache entry is never handed out: drop it and fetch the file again
        await this.chunks.dropFile(id, file.path);
      }
      if (wantBytes) {
        // getFile alone: the quota check covers what the whole model still lacks
        await this.ensureRoom(source, await this.chunks.files(id));
      }
      let rec = await this.openRecord(id, file);
      reporter.setFileLoaded(file.path, rec.bytesStored);
      rec = await fetchIntoChunks({ modelId: id, file, url: fileUrl(source, file) }, rec, {
        chunks: this.chunks,
        fetch: this.fetchFn,
        signal: op.controller.signal,
        maxRetries: this.maxRetries,
        retryDelayMs: this.retryDelayMs,
        progress: reporter,
        paused: () => this.paused(id, op),
      });
      const size = rec.size ?? rec.bytesStored;
      reporter.report(file.path, size, size, { force: true, verifying: true });
      const target = wantBytes ? new Uint8Array(size) : undefined;
      const read = await readStoredFile(this.chunks, id, file.path, rec, { hash: true, target });
      if (read.problem !== null) {
        await this.chunks.dropFile(id, file.path);
        throw new IntegrityError(`${id}/${file.path}: ${read.problem}; the file was discarded and will be downloaded again`, id, file.path);
      }
      await this.chunks.putFile(id, file.path, { ...rec, sha256: read.sha256, complete: true });
      reporter.report(file.path, size, size, { force: true });
      return target ?? null;
    });
  }
}
