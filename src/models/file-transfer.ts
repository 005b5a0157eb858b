/**
 * One file from the network into IndexedDB chunks, and back out of them.
 *
 * Bytes are gathered into one chunk-sized buffer and written when it fills, together with the
 * file record that counts them, so memory holds one chunk, never the file. A broken connection
 * resumes with `Range: bytes=<last stored chunk end>-`; the bytes of an unfinished chunk are
 * fetched again. The server must answer 206 with that start, and a 200 means it ignored the
 * range, so the stored chunks go and the file restarts from byte 0 with that response.
 */
import type { ChunkStore, FileRecord } from './chunk-store.ts';
import { DownloadError, DownloadPaused, IntegrityError, ModelFileError, QuotaError } from './download-errors.ts';
import { parseContentRange, serverFacts, unsatisfiedRangeTotal, type ServerFacts } from './hub-metadata.ts';
import type { ModelFile } from './model-source.ts';
import type { ProgressReporter } from './progress.ts';
import { createSha256 } from './sha256.ts';

export interface FileTask {
  modelId: string;
  /** The catalogue's facts: a mismatch with them is an IntegrityError, not an upstream change. */
  file: ModelFile;
  url: string;
}

export interface TransferOptions {
  chunks: ChunkStore;
  fetch: typeof fetch;
  signal: AbortSignal;
  /** Consecutive failures (no chunk stored in between) before giving up with a DownloadError. */
  maxRetries: number;
  /** Wait before retry n is n times this. */
  retryDelayMs: number;
  progress: ProgressReporter;
  /** The error to throw when the signal aborts (pause or cancel). */
  paused: () => DownloadPaused;
}

/** Server errors worth another try; 4xx other than these will not change by asking again. */
const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

function isFullyStored(rec: FileRecord): boolean {
  return rec.size !== null && rec.bytesStored === rec.size;
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function storageFailure(e: unknown, name: string): ModelFileError {
  if (e instanceof Error && e.name === 'QuotaExceededError') {
    return new QuotaError(`${name}: storage ran out while saving the download (${e.message}); the chunks stored so far are kept`, 0, null);
  }
  return new ModelFileError(`${name}: the download could not be saved in IndexedDB (${describe(e)})`);
}

/**
 * Squares what a response says about the file with the record. A conflict with the catalogue is
 * an IntegrityError; a conflict with what an earlier response said means the file changed on the
 * hub, so the stored part is dropped and `restart` is set when a resumed request must be redone.
 */
async function reconcile(task: FileTask, rec: FileRecord, facts: ServerFacts, chunks: ChunkStore): Promise<{ rec: FileRecord; restart: boolean }> {
  const { modelId, file } = task;
  const sizeConflict = facts.size !== null && rec.size !== null && facts.size !== rec.size;
  const shaConflict = facts.sha256 !== null && rec.sha256 !== null && facts.sha256 !== rec.sha256;
  if (sizeConflict || shaConflict) {
    const what = sizeConflict ? `${facts.size} bytes, expected ${rec.size}` : `sha256 ${facts.sha256}, expected ${rec.sha256}`;
    if ((sizeConflict && file.size !== undefined) || (shaConflict && file.sha256 !== undefined)) {
      await chunks.dropFile(modelId, file.path);
      throw new IntegrityError(`${modelId}/${file.path}: the server's file does not match the catalogue (${what}); nothing of it was kept`, modelId, file.path);
    }
    const fresh = await chunks.resetFile(modelId, file.path, {
      ...rec,
      size: file.size ?? facts.size,
      sha256: file.sha256?.toLowerCase() ?? facts.sha256,
    });
    return { rec: fresh, restart: rec.bytesStored > 0 };
  }
  if ((rec.size === null && facts.size !== null) || (rec.sha256 === null && facts.sha256 !== null)) {
    const filled = { ...rec, size: rec.size ?? facts.size, sha256: rec.sha256 ?? facts.sha256 };
    await chunks.putFile(modelId, file.path, filled);
    return { rec: filled, restart: false };
  }
  return { rec, restart: false };
}

/** Fetches what the record lacks until every byte is stored; returns the record (not yet verified). */
export async function fetchIntoChunks(task: FileTask, start: FileRecord, o: TransferOptions): Promise<FileRecord> {
  const { modelId, file, url } = task;
  const name = `${modelId}/${file.path}`;
  let rec = start;
  let failures = 0;
  let buffer: Uint8Array<ArrayBuffer> | null = null;

  const retryOrThrow = async (error: DownloadError): Promise<void> => {
    failures++;
    if (failures > o.maxRetries) throw error;
    await sleep(o.retryDelayMs * failures, o.signal);
  };
  const storeChunk = async (bytes: ArrayBuffer, length: number): Promise<FileRecord> => {
    const next: FileRecord = { ...rec, chunks: rec.chunks + 1, bytesStored: rec.bytesStored + length };
    try {
      await o.chunks.putChunk(modelId, file.path, rec.chunks, bytes, next);
    } catch (e) {
      throw storageFailure(e, name);
    }
    return next;
  };

  while (!isFullyStored(rec)) {
    if (o.signal.aborted) throw o.paused();
    const offset = rec.bytesStored;
    let response: Response;
    try {
      response = await o.fetch(url, offset > 0 ? { headers: { Range: `bytes=${offset}-` }, signal: o.signal } : { signal: o.signal });
    } catch (e) {
      if (o.signal.aborted) throw o.paused();
      await retryOrThrow(new DownloadError(`${name}: download failed (${describe(e)})`, undefined, { cause: e }));
      continue;
    }

    if (response.status === 416 && offset > 0) {
      await discard(response);
      if (rec.size === null && unsatisfiedRangeTotal(response.headers.get('content-range')) === offset) {
        // the file ended exactly on a chunk boundary and its size was never stated
        rec = { ...rec, size: offset };
        await o.chunks.putFile(modelId, file.path, rec);
        continue;
      }
      rec = await o.chunks.resetFile(modelId, file.path, rec);
      await retryOrThrow(new DownloadError(`${name}: the server refused to resume at byte ${offset} (HTTP 416); starting over`, 416));
      continue;
    }
    if (!response.ok) {
      await discard(response);
      const error = new DownloadError(`${name}: download failed with HTTP ${response.status}`, response.status);
      if (!RETRYABLE.has(response.status)) throw error;
      await retryOrThrow(error);
      continue;
    }
    if (offset > 0 && response.status === 206) {
      const header = response.headers.get('content-range');
      if (parseContentRange(header)?.start !== offset) {
        await discard(response);
        rec = await o.chunks.resetFile(modelId, file.path, rec);
        await retryOrThrow(new DownloadError(`${name}: asked to resume at byte ${offset}, the server sent "${header ?? 'no Content-Range'}"; starting over`, 206));
        continue;
      }
    } else if (offset > 0) {
      rec = await o.chunks.resetFile(modelId, file.path, rec);
    } else if (response.status === 206 && parseContentRange(response.headers.get('content-range'))?.start !== 0) {
      await discard(response);
      await retryOrThrow(new DownloadError(`${name}: the server sent a partial answer that does not start at byte 0`, 206));
      continue;
    }

    const reconciled = await reconcile(task, rec, serverFacts(response, task.url), o.chunks);
    rec = reconciled.rec;
    if (reconciled.restart) {
      await discard(response);
      continue;
    }
    o.progress.report(file.path, rec.bytesStored, rec.size, { force: true });

    let filled = 0;
    let streamFailed: unknown = null;
    const reader = response.body?.getReader();
    try {
      for (;;) {
        if (!reader) break;
        const { done, value } = await reader.read();
        if (done) break;
        o.progress.received(value.byteLength);
        if (rec.size !== null && rec.bytesStored + filled + value.byteLength > rec.size) {
          await reader.cancel().catch(() => undefined);
          await o.chunks.dropFile(modelId, file.path);
          throw new IntegrityError(`${name}: the server sent more than the expected ${rec.size} bytes; the file was discarded`, modelId, file.path);
        }
        let rest = value;
        while (rest.byteLength > 0) {
          buffer ??= new Uint8Array(rec.chunkSize);
          const n = Math.min(rest.byteLength, rec.chunkSize - filled);
          buffer.set(rest.subarray(0, n), filled);
          filled += n;
          rest = rest.subarray(n);
          if (filled === rec.chunkSize) {
            // IndexedDB clones the buffer when the write is queued, so it can be refilled once the write is done
            rec = await storeChunk(buffer.buffer, filled);
            filled = 0;
            failures = 0;
            o.progress.report(file.path, rec.bytesStored, rec.size, { force: true });
          }
        }
        o.progress.report(file.path, rec.bytesStored + filled, rec.size);
        // Every expected byte is in: stop here rather than wait for the end of a body that a server or proxy
        // may hold open (seen as a download stuck at "N of N bytes").
        if (rec.size !== null && rec.bytesStored + filled === rec.size) {
          void reader.cancel().catch(() => undefined);
          break;
        }
      }
    } catch (e) {
      if (e instanceof ModelFileError) throw e;
      if (o.signal.aborted) throw o.paused();
      streamFailed = e;
    }
    const received = rec.bytesStored + filled;
    if (streamFailed !== null) {
      await retryOrThrow(new DownloadError(
        `${name}: the connection broke after ${received} bytes (${describe(streamFailed)}); ${rec.bytesStored} bytes are stored and the download resumes from there`,
        undefined,
        { cause: streamFailed },
      ));
      continue;
    }
    if (rec.size !== null && received < rec.size) {
      // a clean end before the stated size is a broken connection all the same
      await retryOrThrow(new DownloadError(`${name}: the server sent ${received} of ${rec.size} bytes; ${rec.bytesStored} bytes are stored and the download resumes from there`));
      continue;
    }
    if (filled > 0 && buffer) rec = await storeChunk(buffer.slice(0, filled).buffer, filled);
    if (rec.size === null) {
      rec = { ...rec, size: rec.bytesStored };
      await o.chunks.putFile(modelId, file.path, rec);
    }
  }
  return rec;
}

export interface StoredRead {
  /** Why the stored file is not what its record says; null when it is. */
  problem: string | null;
  /** The stored bytes' sha256 when hashed. */
  sha256: string | null;
}

/**
 * Re-reads a file's chunks in order: checks each one's presence and length, hashes them
 * incrementally when asked (against the record's sha256 when it has one) and copies them into
 * `target` when given, so a caller that needs the bytes pays for one read, not two.
 */
const READ_AHEAD = 4;

export async function readStoredFile(
  chunks: ChunkStore,
  modelId: string,
  path: string,
  rec: FileRecord,
  options: { hash: boolean; target?: Uint8Array },
): Promise<StoredRead> {
  const fail = (problem: string): StoredRead => ({ problem, sha256: null });
  if (rec.size === null) return fail('its size is unknown');
  if (rec.bytesStored !== rec.size) return fail(`expected ${rec.size} bytes, got ${rec.bytesStored}`);
  const count = Math.ceil(rec.size / rec.chunkSize);
  if (rec.chunks !== count) return fail(`expected ${count} chunks, the record counts ${rec.chunks}`);
  const hasher = options.hash ? createSha256() : null;
  // Reads run READ_AHEAD chunks ahead of the copy and hashing: IndexedDB serves concurrent gets faster
  // than one at a time, and at most that many chunks are in memory beside the target.
  const pending: Promise<ArrayBuffer | undefined>[] = [];
  const settleAll = () => Promise.all(pending.splice(0).map((p) => p.catch(() => undefined)));
  let requested = 0;
  for (let i = 0; i < count; i++) {
    while (requested < count && requested < i + READ_AHEAD) {
      const read = chunks.getChunk(modelId, path, requested++);
      // handled here too, so that a failing read ahead of the one awaited is not an unhandled rejection
      read.catch(() => undefined);
      pending.push(read);
    }
    const bytes = await pending.shift();
    const expected = i + 1 < count ? rec.chunkSize : rec.size - i * rec.chunkSize;
    if (!bytes) {
      await settleAll();
      return fail(`chunk ${i} is missing`);
    }
    if (bytes.byteLength !== expected) {
      await settleAll();
      return fail(`chunk ${i} has ${bytes.byteLength} bytes, expected ${expected}`);
    }
    const view = new Uint8Array(bytes);
    hasher?.update(view);
    options.target?.set(view, i * rec.chunkSize);
  }
  const sha256 = hasher?.hex() ?? null;
  if (sha256 !== null && rec.sha256 !== null && sha256 !== rec.sha256) return { problem: `sha256 mismatch (expected ${rec.sha256}, got ${sha256})`, sha256 };
  return { problem: null, sha256 };
}
