/**
 * The models a user can pick, download, pause, resume, cancel and delete, and the storage they
 * take. Downloads run in the engine worker (their bytes never cross to the page); this layer keeps
 * the catalogue (generated, real and user-added models) and words failures for the user.
 */
import { createStore, get, set, type UseStore } from 'idb-keyval';
import { errorResponse, type ErrorResponse } from './responses.ts';
import type { ModelManagementApi, StorageInfo, WorkerOutcome } from '../engine/worker-api.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';
import type { DownloadProgress, ModelFile } from '../models/model-source.ts';
import type { CachedModel, ModelStatus } from '../models/model-store.ts';
import { customModel, STANDARD_LAYOUT } from '../models/real-models.ts';
import { requestPersistentStorage } from '../models/quota.ts';

export type ModelActionResult = { ok: true } | { ok: false; kind: string; message: string };

const CUSTOM_KEY = 'custom-models';

/** A model the user added, as kept across visits: its files were probed once, when it was added. */
interface SavedModel {
  baseUrl: string;
  name?: string;
  files: string[];
}

/**
 * The standard layout's files that the repository really has: required ones must answer, optional
 * ones (VAE encoder, safety checker, external data, configs) are dropped when the server says 404.
 */
async function presentFiles(baseUrl: string, fetchFn: typeof fetch): Promise<ModelFile[] | ErrorResponse> {
  const checks = await Promise.all(STANDARD_LAYOUT.map(async (f) => {
    try {
      const r = await fetchFn(new URL(f.path, baseUrl).href, { method: 'HEAD' });
      return { ...f, status: r.status };
    } catch {
      return { ...f, status: 0 };
    }
  }));
  const missing = checks.filter((c) => !c.optional && (c.status < 200 || c.status >= 400));
  if (missing.length > 0) {
    const what = missing.map((m) => `${m.path} (${m.status === 0 ? 'unreachable' : `HTTP ${m.status}`})`).join(', ');
    return errorResponse({ base_url: [`This is not a model in the standard layout, or it cannot be reached: ${what}.`] });
  }
  return checks.filter((c) => c.status >= 200 && c.status < 400).map(({ path }) => ({ path }));
}

export class ModelManager {
  private readonly settings: UseStore | null;

  constructor(
    private readonly worker: ModelManagementApi,
    /** The catalogue, shared with the local client (added models appear in both). */
    readonly catalogue: CatalogueEntry[],
    private readonly proxy: <T extends (...args: never[]) => unknown>(fn: T) => T = (fn) => fn,
    settings?: UseStore | null,
    private readonly fetchFn: typeof fetch = (input, init) => fetch(input, init),
  ) {
    this.settings = settings !== undefined ? settings : typeof indexedDB !== 'undefined' ? createStore('sd-settings', 'values') : null;
  }

  /** Restores the models the user added in earlier visits. */
  async restore(): Promise<void> {
    if (!this.settings) return;
    const saved = (await get<SavedModel[]>(CUSTOM_KEY, this.settings)) ?? [];
    for (const m of saved) {
      const entry = customModel(m.baseUrl, m.name);
      entry.source.files = m.files.map((path) => ({ path }));
      this.addEntry(entry);
    }
  }

  entry(id: string): CatalogueEntry | undefined {
    return this.catalogue.find((m) => m.id === id);
  }

  /** Adds a model by the base URL of a repository with the standard layout (e.g. https://huggingface.co/<repo>/resolve/main/). */
  async add(baseUrl: string, name?: string): Promise<CatalogueEntry | ErrorResponse> {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      return errorResponse({ base_url: ['The base URL must be a full http(s) URL.'] });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return errorResponse({ base_url: ['The base URL must be a full http(s) URL.'] });
    const entry = customModel(url.href, name);
    const existing = this.entry(entry.id);
    if (existing) return existing;
    const files = await presentFiles(entry.source.baseUrl, this.fetchFn);
    if ('status' in files) return files;
    entry.source.files = files;
    this.addEntry(entry);
    if (this.settings) {
      const saved = (await get<SavedModel[]>(CUSTOM_KEY, this.settings)) ?? [];
      await set(CUSTOM_KEY, [...saved, { baseUrl: entry.source.baseUrl, name, files: files.map((f) => f.path) }], this.settings);
    }
    return entry;
  }

  private addEntry(entry: CatalogueEntry): void {
    if (!this.entry(entry.id)) this.catalogue.push(entry);
  }

  status(id: string): Promise<ModelStatus | null> {
    const entry = this.entry(id);
    return entry ? this.worker.modelStatus(entry.source) : Promise.resolve(null);
  }

  cached(): Promise<CachedModel[]> {
    return this.worker.listCachedModels();
  }

  storage(): Promise<StorageInfo> {
    return this.worker.storage();
  }

  async download(id: string, onProgress?: (p: DownloadProgress) => void): Promise<ModelActionResult> {
    const entry = this.entry(id);
    if (!entry) return { ok: false, kind: 'unknown', message: `No model "${id}" in the catalogue.` };
    // Only a page (not the worker) can ask for persistent storage; a refusal only means eviction stays possible.
    await requestPersistentStorage();
    // Progress comes over a MessagePort of its own (the proxy) and the result over the worker's; messages on two
    // ports are not ordered, so the last progress event can land after the result and would undo what the caller
    // showed for it ("downloaded and verified" back to "N of N bytes"). Nothing is passed on once the result is in.
    let finished = false;
    const forward = onProgress && ((p: DownloadProgress) => { if (!finished) onProgress(p); });
    try {
      return result(await this.worker.downloadModel(entry.source, forward ? this.proxy(forward) : undefined));
    } finally {
      finished = true;
    }
  }

  pause(id: string): void {
    void this.worker.pauseDownload(id);
  }

  async cancel(id: string): Promise<void> {
    const entry = this.entry(id);
    if (entry) await this.worker.cancelDownload(entry.source);
  }

  async delete(id: string): Promise<ModelActionResult> {
    return result(await this.worker.deleteModel(id));
  }
}

function result(outcome: WorkerOutcome<void>): ModelActionResult {
  return outcome.ok ? { ok: true } : { ok: false, kind: outcome.kind, message: outcome.message };
}
