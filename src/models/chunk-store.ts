/**
 * The IndexedDB layout of the model cache (one idb-keyval store, array keys so that model ids
 * with slashes never collide):
 *   ['model', id]                    ModelRecord: the model's file list, recorded when a download starts
 *   ['file', id, path]               FileRecord: expected size/sha256, chunks stored so far, complete or not
 *   ['chunk', id, path, index]       ArrayBuffer: chunkSize bytes (only a file's last chunk is shorter)
 * A chunk and the file record that counts it are written in one transaction, so after a crash or
 * a reload the record never counts a chunk that is not there.
 */
import { delMany, get, getMany, keys, setMany, set, type UseStore } from 'idb-keyval';
import type { ModelFile } from './model-source.ts';

export interface ModelRecord {
  id: string;
  baseUrl: string;
  files: ModelFile[];
  updatedAt: number;
}

export interface FileRecord {
  /** Expected size in bytes (catalogue, else the server); null while unknown. */
  size: number | null;
  /** Expected sha256, lower-case hex (catalogue, else the server); null while unknown. */
  sha256: string | null;
  chunkSize: number;
  /** Chunks stored: indices 0..chunks-1. */
  chunks: number;
  bytesStored: number;
  /** Set only after the stored chunks were re-read and matched size and sha256. */
  complete: boolean;
}

type ModelKey = ['model', string];
type FileKey = ['file', string, string];
type ChunkKey = ['chunk', string, string, number];

const modelKey = (id: string): ModelKey => ['model', id];
const fileKey = (id: string, path: string): FileKey => ['file', id, path];
const chunkKey = (id: string, path: string, index: number): ChunkKey => ['chunk', id, path, index];

function isKeyOf(key: IDBValidKey, kind: string, id: string, path?: string): boolean {
  return Array.isArray(key) && key[0] === kind && key[1] === id && (path === undefined || key[2] === path);
}

export class ChunkStore {
  constructor(readonly idb: UseStore) {}

  getModel(id: string): Promise<ModelRecord | undefined> {
    return get<ModelRecord>(modelKey(id), this.idb);
  }

  putModel(record: ModelRecord): Promise<void> {
    return set(modelKey(record.id), record, this.idb);
  }

  async models(): Promise<ModelRecord[]> {
    const ids = (await keys(this.idb)).filter((k): k is ModelKey => Array.isArray(k) && k[0] === 'model');
    return (await getMany<ModelRecord>(ids, this.idb)).filter((r): r is ModelRecord => r !== undefined);
  }

  getFile(id: string, path: string): Promise<FileRecord | undefined> {
    return get<FileRecord>(fileKey(id, path), this.idb);
  }

  putFile(id: string, path: string, record: FileRecord): Promise<void> {
    return set(fileKey(id, path), record, this.idb);
  }

  /** Every file record of the model, including files no longer in its list. */
  async files(id: string): Promise<Map<string, FileRecord>> {
    const fileKeys = (await keys(this.idb)).filter((k): k is FileKey => isKeyOf(k, 'file', id));
    const records = await getMany<FileRecord>(fileKeys, this.idb);
    const out = new Map<string, FileRecord>();
    fileKeys.forEach((k, i) => {
      if (records[i]) out.set(k[2], records[i]);
    });
    return out;
  }

  /** Stores chunk `index` and the record that now counts it, atomically. */
  putChunk(id: string, path: string, index: number, bytes: ArrayBuffer, record: FileRecord): Promise<void> {
    return setMany([[chunkKey(id, path, index), bytes], [fileKey(id, path), record]], this.idb);
  }

  getChunk(id: string, path: string, index: number): Promise<ArrayBuffer | undefined> {
    return get<ArrayBuffer>(chunkKey(id, path, index), this.idb);
  }

  /** Removes the file's record and every chunk of it, counted or orphaned. */
  async dropFile(id: string, path: string): Promise<void> {
    const doomed = (await keys(this.idb)).filter((k) => isKeyOf(k, 'chunk', id, path) || isKeyOf(k, 'file', id, path));
    if (doomed.length > 0) await delMany(doomed, this.idb);
  }

  /** Removes every chunk of the file but keeps a record (reset to nothing stored) so its metadata survives. */
  async resetFile(id: string, path: string, record: FileRecord): Promise<FileRecord> {
    await this.dropFile(id, path);
    const fresh = { ...record, chunks: 0, bytesStored: 0, complete: false };
    await this.putFile(id, path, fresh);
    return fresh;
  }

  /** Removes everything stored for the model and nothing else. */
  async dropModel(id: string): Promise<void> {
    const doomed = (await keys(this.idb)).filter((k) => isKeyOf(k, 'model', id) || isKeyOf(k, 'file', id) || isKeyOf(k, 'chunk', id));
    if (doomed.length > 0) await delMany(doomed, this.idb);
  }

  /**
   * The first store version kept whole files under string keys "<id>/<path>"; they are unreadable
   * now and would hold quota unseen, so they go.
   */
  async dropLegacyEntries(): Promise<void> {
    const legacy = (await keys(this.idb)).filter((k) => typeof k === 'string');
    if (legacy.length > 0) await delMany(legacy, this.idb);
  }
}
