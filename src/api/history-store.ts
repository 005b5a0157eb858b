/**
 * Finished results kept in IndexedDB, so `fetch(id)` still answers after a page reload, and the
 * persistent counter that hands out API ids.
 *
 * A success's output URLs are blob: URLs that die with the page, so the PNG bytes are stored
 * beside the record and `toResponse` rebuilds the URLs. The API key is never stored: `key` is
 * stripped from the request (and from the response's meta, in case a caller copied it there).
 *
 * Layout of the object store (one database per app, default 'sd-history' / 'responses'):
 *   <id: number>        → the record without PNG bytes (so `list` never reads images)
 *   ['png', <id>]       → the record's PNG bytes (Uint8Array[])
 *   'next-id'           → the last id handed out
 * IndexedDB orders number keys before strings and arrays, so a number key range selects the
 * records alone.
 */
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import type { FailedResponse, SuccessResponse } from './responses.ts';

export type FinishedResponse = SuccessResponse | FailedResponse;

/** What `save` takes. */
export interface HistoryInput {
  response: FinishedResponse;
  /** The request as received; its `key` is dropped before storing. */
  request: Record<string, unknown>;
  /** Milliseconds since the epoch (Date.now()). */
  createdAt: number;
  /** A success's images, one per output, in output order. */
  pngs?: Uint8Array[];
}

/** What `load` returns: the stored record, with its id and PNG bytes. */
export interface HistoryRecord {
  id: number;
  response: FinishedResponse;
  request: Record<string, unknown>;
  createdAt: number;
  pngs?: Uint8Array[];
}

/** What `list` returns: a record without its PNG bytes. */
export interface HistorySummary {
  id: number;
  response: FinishedResponse;
  request: Record<string, unknown>;
  createdAt: number;
  pngCount: number;
}

export interface HistoryStoreOptions {
  /** An idb-keyval store; default createStore('sd-history', 'responses'). */
  store?: UseStore;
}

const COUNTER_KEY = 'next-id';
const pngKey = (id: number): IDBValidKey => ['png', id];
const recordRange = () => IDBKeyRange.bound(-Infinity, Infinity);

export class HistoryStore {
  private readonly store: UseStore;

  constructor(options: HistoryStoreOptions = {}) {
    this.store = options.store ?? createStore('sd-history', 'responses');
  }

  /**
   * A new API id, larger than every id handed out or stored before (across reloads and tabs).
   * The read and the write happen in one readwrite transaction, which IndexedDB runs one at a
   * time per store, so concurrent calls never get the same id.
   */
  nextId(): Promise<number> {
    return this.store('readwrite', (store) => new Promise<number>((resolve, reject) => {
      let next = 1;
      const counter = store.get(COUNTER_KEY);
      counter.onsuccess = () => {
        // The highest stored record id too, so a lost or reset counter can never reuse an id.
        const newest = store.openCursor(recordRange(), 'prev');
        newest.onsuccess = () => {
          const last = Math.max(asId(counter.result), asId(newest.result?.key));
          next = last + 1;
          store.put(next, COUNTER_KEY);
        };
      };
      const tx = store.transaction;
      tx.oncomplete = () => resolve(next);
      tx.onabort = tx.onerror = () => reject(tx.error ?? new Error('The id counter could not be updated.'));
    }));
  }

  /**
   * Stores a finished job (replacing any record with the same id). The record and its PNGs are
   * written in one transaction. Rejects when IndexedDB refuses (quota, a value it cannot clone).
   */
  save(id: number, input: HistoryInput): Promise<void> {
    const pngs = (input.pngs ?? []).map(ownBuffer);
    const stored: StoredRecord = {
      id,
      response: stripResponseKey(input.response),
      request: withoutKey(input.request),
      createdAt: input.createdAt,
      pngCount: pngs.length,
    };
    return this.store('readwrite', (store) => {
      store.put(stored, id);
      if (pngs.length) store.put(pngs, pngKey(id));
      else store.delete(pngKey(id));
      return promisifyRequest(store.transaction);
    });
  }

  /** The record with its PNG bytes, or undefined for an unknown id. */
  async load(id: number): Promise<HistoryRecord | undefined> {
    const [stored, pngs] = await this.store('readonly', (store) =>
      Promise.all([
        promisifyRequest(store.get(id)) as Promise<StoredRecord | undefined>,
        promisifyRequest(store.get(pngKey(id))) as Promise<Uint8Array[] | undefined>,
      ]),
    );
    if (!stored) return undefined;
    const { pngCount: _pngCount, ...record } = stored;
    return pngs?.length ? { ...record, pngs } : record;
  }

  /** Every record, newest first (by createdAt, then id), without PNG bytes. */
  async list(): Promise<HistorySummary[]> {
    const all = await this.store('readonly', (store) => promisifyRequest(store.getAll(recordRange())) as Promise<StoredRecord[]>);
    return all.sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
  }

  /** Removes the record and its PNGs; a no-op for an unknown id. */
  delete(id: number): Promise<void> {
    return this.store('readwrite', (store) => {
      store.delete(id);
      store.delete(pngKey(id));
      return promisifyRequest(store.transaction);
    });
  }
}

/**
 * The API response for a stored record: a success gets fresh output URLs made from its PNG bytes
 * (the stored blob: URLs died with the page that made them); anything else is returned as stored.
 * Each call makes new URLs: callers that hand out blob: URLs should cache the result per id.
 */
export function toResponse(record: HistoryRecord, toUrl: (png: Uint8Array, index: number) => string): FinishedResponse {
  if (record.response.status !== 'success' || !record.pngs?.length) return record.response;
  return { ...record.response, output: record.pngs.map((png, i) => toUrl(png, i)) };
}

/** The stored form of a record: its PNG bytes live under their own key. */
type StoredRecord = HistorySummary;

/** A shallow copy without the API key. */
function withoutKey<T extends object>(value: T): T {
  const copy: Record<string, unknown> = { ...(value as object) };
  delete copy.key;
  return copy as T;
}

function stripResponseKey(response: FinishedResponse): FinishedResponse {
  const copy = withoutKey(response);
  if (copy.meta && typeof copy.meta === 'object') copy.meta = withoutKey(copy.meta);
  return copy;
}

/** Structured clone copies a view's whole buffer; store just the view's bytes, in a plain ArrayBuffer. */
function ownBuffer(png: Uint8Array): Uint8Array {
  const exact = png.buffer instanceof ArrayBuffer && png.byteOffset === 0 && png.byteLength === png.buffer.byteLength;
  return exact ? png : png.slice();
}

function asId(key: unknown): number {
  return typeof key === 'number' && Number.isFinite(key) ? Math.max(0, Math.floor(key)) : 0;
}
