/**
 * Model files cached in IndexedDB (idb-keyval). A file counts as cached only after its size and
 * sha256 matched what the model source declares; a stored file that no longer matches is
 * dropped and fetched again, never handed to ORT.
 */
import { createStore, del, get, keys, set, type UseStore } from 'idb-keyval';
import type { DownloadProgress, ModelFile, ModelSource } from './model-source.ts';
import { sha256Hex } from './sha256.ts';

export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

interface StoredFile {
  bytes: ArrayBuffer;
  size: number;
  sha256: string;
}

export interface ModelStoreOptions {
  fetch?: typeof fetch;
  store?: UseStore;
}

export class ModelStore {
  private readonly fetchFn: typeof fetch;
  private readonly store: UseStore;

  constructor(options: ModelStoreOptions = {}) {
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.store = options.store ?? createStore('sd-models', 'files');
  }

  private key(modelId: string, path: string): string {
    return `${modelId}/${path}`;
  }

  /** The file's bytes: from IndexedDB when a verified copy is there, else from the network (then stored). */
  async getFile(source: ModelSource, file: ModelFile, onProgress?: (p: DownloadProgress) => void): Promise<Uint8Array> {
    const key = this.key(source.id, file.path);
    const stored = await get<StoredFile>(key, this.store);
    if (stored && matches(stored, file)) {
      onProgress?.({ modelId: source.id, file: file.path, loaded: stored.size, total: stored.size, fromCache: true });
      return new Uint8Array(stored.bytes);
    }
    if (stored) await del(key, this.store); // stale or corrupt: never feed it to ORT
    const bytes = await this.download(source, file, onProgress);
    const sha256 = await sha256Hex(bytes);
    if (file.size !== undefined && bytes.byteLength !== file.size) {
      throw new ModelFileError(`${source.id}/${file.path}: expected ${file.size} bytes, got ${bytes.byteLength}; the file was not stored`);
    }
    if (file.sha256 && sha256 !== file.sha256.toLowerCase()) {
      throw new ModelFileError(`${source.id}/${file.path}: sha256 mismatch (expected ${file.sha256}, got ${sha256}); the file was not stored`);
    }
    await set(key, { bytes: exactBuffer(bytes), size: bytes.byteLength, sha256 } satisfies StoredFile, this.store);
    return bytes;
  }

  /** Paths of this model that have a stored copy. */
  async cachedFiles(modelId: string): Promise<string[]> {
    const prefix = `${modelId}/`;
    return (await keys<string>(this.store)).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  private async download(source: ModelSource, file: ModelFile, onProgress?: (p: DownloadProgress) => void): Promise<Uint8Array> {
    const url = new URL(file.path, source.baseUrl).href;
    let response: Response;
    try {
      response = await this.fetchFn(url);
    } catch (e) {
      throw new ModelFileError(`${source.id}/${file.path}: download failed (${e instanceof Error ? e.message : String(e)})`);
    }
    if (!response.ok) throw new ModelFileError(`${source.id}/${file.path}: download failed with HTTP ${response.status}`);
    const header = Number(response.headers.get('content-length'));
    const total = file.size ?? (Number.isFinite(header) && header > 0 ? header : null);
    const report = (loaded: number) => onProgress?.({ modelId: source.id, file: file.path, loaded, total, fromCache: false });
    if (!response.body) {
      const bytes = new Uint8Array(await response.arrayBuffer());
      report(bytes.byteLength);
      return bytes;
    }
    // Known size: write chunks straight into one buffer, so the file is held once.
    const reader = response.body.getReader();
    let buffer = new Uint8Array(total ?? 1 << 20);
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.byteLength > buffer.byteLength) {
        const grown = new Uint8Array(Math.max(buffer.byteLength * 2, loaded + value.byteLength));
        grown.set(buffer.subarray(0, loaded));
        buffer = grown;
      }
      buffer.set(value, loaded);
      loaded += value.byteLength;
      report(loaded);
    }
    return loaded === buffer.byteLength ? buffer : buffer.slice(0, loaded);
  }
}

function matches(stored: StoredFile, file: ModelFile): boolean {
  if (stored.bytes.byteLength !== stored.size) return false;
  if (file.size !== undefined && stored.size !== file.size) return false;
  if (file.sha256 && stored.sha256 !== file.sha256.toLowerCase()) return false;
  return true;
}

/** The bytes as a standalone ArrayBuffer (no copy when the view already spans its whole buffer). */
function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return whole ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
}
