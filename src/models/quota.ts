/**
 * Storage checks before a download: the browser's estimate of free quota against the bytes still
 * to fetch, and a request for persistent storage so the cache is not evicted under pressure.
 */
export interface StorageLike {
  estimate(): Promise<{ quota?: number; usage?: number }>;
  persist?(): Promise<boolean>;
}

export interface StorageRoom {
  /** quota - usage; null when the browser does not say. */
  available: number | null;
  quota: number | null;
  usage: number | null;
}

/** navigator.storage where it exists (window and worker), else null (Node 20 has no navigator). */
export function defaultStorage(): StorageLike | null {
  const nav = (globalThis as { navigator?: { storage?: StorageLike } }).navigator;
  return nav?.storage && typeof nav.storage.estimate === 'function' ? nav.storage : null;
}

export async function storageRoom(storage: StorageLike | null): Promise<StorageRoom> {
  if (!storage) return { available: null, quota: null, usage: null };
  let estimate: { quota?: number; usage?: number };
  try {
    estimate = await storage.estimate();
  } catch {
    // an estimate that fails tells nothing; the writes themselves will still report QuotaExceededError
    return { available: null, quota: null, usage: null };
  }
  const quota = typeof estimate.quota === 'number' ? estimate.quota : null;
  const usage = typeof estimate.usage === 'number' ? estimate.usage : 0;
  return { available: quota === null ? null : Math.max(0, quota - usage), quota, usage };
}

/** Decimal units, as the hub and the browser's site settings show sizes. */
export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/**
 * Asks the browser not to evict the cache under storage pressure. StorageManager.persist() exists
 * on the main thread only (a worker's navigator.storage has estimate() but not persist()), so the
 * UI calls this when a worker does the downloading. Resolves to whether storage is persistent, or
 * null where the browser has no such API.
 */
export async function requestPersistentStorage(storage: StorageLike | null = defaultStorage()): Promise<boolean | null> {
  if (!storage?.persist) return null;
  try {
    return await storage.persist();
  } catch {
    return false;
  }
}
