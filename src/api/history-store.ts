/**
 * Finished results kept in IndexedDB, so `fetch(id)` still answers after a page reload, and the
 * persistent counter that hands out API ids.
 *
 * A success's output URLs are blob: URLs that die with the page, so the PNG bytes are stored
 * beside the record and `toResponse` rebuilds the URLs.
 *
 * Records are plain JSON (plain-json.ts): the request keeps the API's known fields only, the
 * response is copied without functions, BigInts or cycles, the API key is dropped at any depth,
 * and inline images are stored once, as bytes beside the record, with a short reference in their
 * place (image-reference.ts). One odd request can therefore neither fail its own save nor make
 * the history unreadable for everyone after it.
 *
 * A job is recorded when it is accepted (response status 'processing', with the page that runs
 * it as `owner`), so that after a reload fetch(id) can tell "the page closed while it ran" from
 * "no such request".
 *
 * Layout of the object store (one database per app, default 'sd-history' / 'responses'):
 *   <id: number>        → the record without PNG bytes (so listing never reads images)
 *   ['png', <id>]       → the record's PNG bytes (Uint8Array[])
 *   ['input', <id>]     → inline init/mask images of the request: { field: { bytes, mimeType } }
 *   'next-id'           → the last id handed out
 * IndexedDB orders number keys before strings and arrays, so a number key range selects the
 * records alone.
 */
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import type { FailedResponse, ProcessingResponse, SuccessResponse } from './responses.ts';
import { plainResponse } from './plain-json.ts';
import { isEchoedImageUrl, type ImageField } from './image-reference.ts';
import { storedRequest } from './validate-request.ts';

export type FinishedResponse = SuccessResponse | FailedResponse;
/** A finished job, or one accepted and not finished (its page may have closed since). */
export type StoredResponse = FinishedResponse | ProcessingResponse;

/** An image the request carried inline, kept once so "reuse settings" still has it after a reload. */
export interface StoredImage {
  bytes: ArrayBuffer;
  mimeType: string;
}

/** What `save` takes. */
export interface HistoryInput {
  response: StoredResponse;
  /** The request as received: only the API's known fields are kept, never its `key`. */
  request: unknown;
  /** Milliseconds since the epoch (Date.now()). */
  createdAt: number;
  /** A success's images, one per output, in output order. */
  pngs?: Uint8Array[];
  /** The page running an accepted job (see LocalClient); absent for finished ones. */
  owner?: string;
  /** The request's images as fetched; those given inline are kept (http(s) URLs are not). */
  inputs?: Partial<Record<ImageField, StoredImage>>;
}

/** What `load` returns: the stored record, with its id and PNG bytes. */
export interface HistoryRecord {
  id: number;
  response: StoredResponse;
  request: Record<string, unknown>;
  createdAt: number;
  owner?: string;
  pngs?: Uint8Array[];
}

/** What listing returns: a record without its PNG bytes. */
export interface HistorySummary {
  id: number;
  response: StoredResponse;
  request: Record<string, unknown>;
  createdAt: number;
  owner?: string;
  pngCount: number;
}

/** One page of records, newest first; `next` continues below it (null: no more). */
export interface HistoryPage {
  items: HistorySummary[];
  next: number | null;
  /** Records on the way that are not in the shape this version writes: left alone, not shown. */
  unreadable: number[];
}

export interface HistoryStoreOptions {
  /** An idb-keyval store; default createStore('sd-history', 'responses'). */
  store?: UseStore;
}

const COUNTER_KEY = 'next-id';
const pngKey = (id: number): IDBValidKey => ['png', id];
const inputKey = (id: number): IDBValidKey => ['input', id];
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
      response: plainResponse(input.response),
      request: storedRequest(input.request),
      createdAt: Number.isFinite(input.createdAt) ? input.createdAt : Date.now(),
      pngCount: pngs.length,
      ...(input.owner ? { owner: input.owner } : {}),
    };
    const inputs = inlineInputs(stored.request, input.inputs);
    return this.store('readwrite', (store) => {
      store.put(stored, id);
      if (pngs.length) store.put(pngs, pngKey(id));
      else store.delete(pngKey(id));
      // An accepted job's record is saved again when it finishes; its inputs arrive then.
      if (inputs) store.put(inputs, inputKey(id));
      else if (!input.owner) store.delete(inputKey(id));
      return promisifyRequest(store.transaction);
    });
  }

  /** The request's inline images as stored (see HistoryInput.inputs); empty when it had none. */
  async loadInputs(id: number): Promise<Partial<Record<ImageField, StoredImage>>> {
    const value = await this.store('readonly', (store) => promisifyRequest(store.get(inputKey(id))) as Promise<unknown>);
    return value !== null && typeof value === 'object' ? (value as Partial<Record<ImageField, StoredImage>>) : {};
  }

  /**
   * Records newest first (by id: ids grow with time), at most `limit` of those `filter` keeps,
   * below `before` when given. Reads record by record with a cursor, so the first page of a long
   * history comes back without reading the rest.
   */
  page(options: { limit: number; before?: number; filter?: (s: HistorySummary) => boolean }): Promise<HistoryPage> {
    const range = IDBKeyRange.upperBound(options.before ?? Infinity, options.before !== undefined);
    return this.store('readonly', (store) => new Promise<HistoryPage>((resolve, reject) => {
      const items: HistorySummary[] = [];
      const unreadable: number[] = [];
      let next: number | null = null;
      const cursor = store.openCursor(range, 'prev');
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c) return resolve({ items, next, unreadable });
        const id = c.key as number;
        if (items.length >= options.limit) {
          next = items[items.length - 1].id;
          return resolve({ items, next, unreadable });
        }
        const summary = asSummary(c.value, id);
        if (!summary) unreadable.push(id);
        else if (!options.filter || options.filter(summary)) items.push(summary);
        c.continue();
      };
      cursor.onerror = () => reject(cursor.error ?? new Error('The history could not be read.'));
    }));
  }

  /** The record with its PNG bytes, or undefined for an unknown id. */
  async load(id: number): Promise<HistoryRecord | undefined> {
    const [stored, pngs] = await this.store('readonly', (store) =>
      Promise.all([
        promisifyRequest(store.get(id)) as Promise<unknown>,
        promisifyRequest(store.get(pngKey(id))) as Promise<Uint8Array[] | undefined>,
      ]),
    );
    // A record in a shape this version cannot read answers as absent rather than breaking the caller.
    const summary = asSummary(stored, id);
    if (!summary) return undefined;
    const { pngCount: _pngCount, ...record } = summary;
    return Array.isArray(pngs) && pngs.length ? { ...record, pngs } : record;
  }

  /** Every readable record, newest first (by createdAt, then id), without PNG bytes. */
  async list(): Promise<HistorySummary[]> {
    const all = await this.store('readonly', (store) => promisifyRequest(store.getAll(recordRange())) as Promise<unknown[]>);
    return all.flatMap((v) => asSummary(v) ?? []).sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
  }

  /** Removes the record and its PNGs; a no-op for an unknown id. */
  delete(id: number): Promise<void> {
    return this.store('readwrite', (store) => {
      store.delete(id);
      store.delete(pngKey(id));
      store.delete(inputKey(id));
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
  if (record.response.status !== 'success' || !record.pngs?.length) return record.response as FinishedResponse;
  return { ...record.response, output: record.pngs.map((png, i) => toUrl(png, i)) };
}

/** The stored form of a record: its PNG bytes live under their own key. */
type StoredRecord = HistorySummary;

/** The images to keep beside the record: those the request gave inline (now references in it). */
function inlineInputs(kept: Record<string, unknown>, inputs: HistoryInput['inputs']): Partial<Record<ImageField, StoredImage>> | null {
  if (!inputs) return null;
  const out: Partial<Record<ImageField, StoredImage>> = {};
  for (const [field, image] of Object.entries(inputs) as [ImageField, StoredImage | undefined][]) {
    const value = kept[field];
    if (!image || typeof value !== 'string' || isEchoedImageUrl(value)) continue;
    out[field] = { bytes: image.bytes, mimeType: image.mimeType };
  }
  return Object.keys(out).length ? out : null;
}

/** A stored value as a summary, or null when it is not in the shape this version writes. */
function asSummary(value: unknown, key?: number): HistorySummary | null {
  if (value === null || typeof value !== 'object') return null;
  const v = value as Partial<StoredRecord>;
  const id = typeof v.id === 'number' ? v.id : key;
  const response = v.response as { status?: unknown } | undefined;
  if (typeof id !== 'number' || !Number.isFinite(id) || (key !== undefined && id !== key)) return null;
  if (!response || typeof response !== 'object' || typeof response.status !== 'string') return null;
  if (v.request === null || typeof v.request !== 'object') return null;
  return {
    id,
    response: v.response as StoredResponse,
    request: v.request as Record<string, unknown>,
    createdAt: typeof v.createdAt === 'number' && Number.isFinite(v.createdAt) ? v.createdAt : 0,
    pngCount: typeof v.pngCount === 'number' ? v.pngCount : 0,
    ...(typeof v.owner === 'string' ? { owner: v.owner } : {}),
  };
}

/** Structured clone copies a view's whole buffer; store just the view's bytes, in a plain ArrayBuffer. */
function ownBuffer(png: Uint8Array): Uint8Array {
  const exact = png.buffer instanceof ArrayBuffer && png.byteOffset === 0 && png.byteLength === png.buffer.byteLength;
  return exact ? png : png.slice();
}

function asId(key: unknown): number {
  return typeof key === 'number' && Number.isFinite(key) ? Math.max(0, Math.floor(key)) : 0;
}
