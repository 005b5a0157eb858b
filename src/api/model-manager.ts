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
import { customEntry } from '../models/catalogue.ts';
import { discoverModel, DiscoveryError } from '../models/repository-discovery.ts';
import { ANY_REQUEST, type ModelLimits, type PipelineFamily } from '../models/model-descriptor.ts';
import { requestPersistentStorage } from '../models/quota.ts';

export type ModelActionResult = { ok: true } | { ok: false; kind: string; message: string };

const CUSTOM_KEY = 'custom-models';

/** A model the user added, as kept across visits: its files were found once, when it was added. */
interface SavedModel {
  baseUrl: string;
  name?: string;
  companionUrl?: string;
  /** Paths, each with the URL it lives at (older saves kept bare paths under baseUrl). */
  files: (string | ModelFile)[];
  limits?: ModelLimits;
  family?: PipelineFamily;
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
      const files = m.files.map((f) => (typeof f === 'string' ? { path: f } : f));
      this.addEntry(customEntry(m.baseUrl, { files, limits: m.limits ?? ANY_REQUEST, family: m.family ?? 'stable-diffusion' }, m.name));
    }
  }

  entry(id: string): CatalogueEntry | undefined {
    return this.catalogue.find((m) => m.id === id);
  }

  /** Adds a model by the base URL of a repository with the standard layout (e.g. https://huggingface.co/<repo>/resolve/main/). */
  /**
   * Adds a diffusers-ONNX model by its repository's base URL (e.g. https://huggingface.co/<repo>/resolve/main/):
   * its files, shards included, come from model_index.json and the hub's tree listing, and a tokenizer or
   * scheduler it lacks from `companionUrl` (another repository's base URL).
   */
  async add(baseUrl: string, name?: string, companionUrl?: string): Promise<CatalogueEntry | ErrorResponse> {
    const base = httpUrl(baseUrl);
    if (!base) return errorResponse({ base_url: ['The base URL must be a full http(s) URL.'] });
    const companion = companionUrl?.trim() ? httpUrl(companionUrl) : null;
    if (companionUrl?.trim() && !companion) return errorResponse({ companion_url: ['The companion repository must be a full http(s) URL.'] });
    const existing = this.entry(`custom:${base}`);
    if (existing) return existing;
    let entry: CatalogueEntry;
    try {
      entry = customEntry(base, await discoverModel(base, this.fetchFn, { companionUrl: companion ?? undefined }), name);
    } catch (e) {
      if (e instanceof DiscoveryError) return errorResponse({ base_url: [e.message] });
      throw e;
    }
    this.addEntry(entry);
    if (this.settings) {
      const saved = (await get<SavedModel[]>(CUSTOM_KEY, this.settings)) ?? [];
      const record: SavedModel = { baseUrl: entry.source.baseUrl, name, companionUrl: companion ?? undefined, files: entry.source.files, limits: entry.limits, family: entry.family };
      await set(CUSTOM_KEY, [...saved, record], this.settings);
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

/** The URL as a repository base (ending in "/"), or null when it is not an http(s) URL. */
function httpUrl(value: string): string | null {
  try {
    const url = new URL(value.trim());
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
    return url.href.endsWith('/') ? url.href : `${url.href}/`;
  } catch {
    return null;
  }
}
