/**
 * createClient(): the library's entry point. Starts the engine worker, reads the model catalogue,
 * picks the backend, and returns a client whose calls take and return the hosted API's objects.
 */
import { proxy, startEngineWorker } from './engine-worker.ts';
import { LocalClient } from './local-client.ts';
import type { ApiResponse } from './responses.ts';
import type { BackendChoice, BackendPreference } from '../engine/runtime.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import type { EngineWorkerApi } from '../engine/worker-api.ts';
import type { LoadedModelInfo } from '../engine/engine.ts';
import { DEFAULT_MODEL_ID, loadGeneratedCatalogue, type CatalogueEntry } from '../models/catalogue.ts';

export interface ClientOptions {
  /** Model used when a request names none. */
  modelId?: string;
  /** auto: WebGPU when an adapter exists, WASM otherwise. */
  backend?: BackendPreference;
  /** Base URL of the app's static files (where models/ and ort/ are served). */
  assetsBaseUrl?: string;
  onProgress?: (p: EngineProgress) => void;
}

export interface Client {
  img2img(request: unknown): Promise<ApiResponse>;
  cancel(): void;
  readonly backend: BackendChoice;
  readonly models: CatalogueEntry[];
  readonly defaultModelId: string;
  /** Loads the default model now rather than on the first request. */
  prepare(): Promise<ApiResponse | LoadedModelInfo>;
}

export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const base = options.assetsBaseUrl ?? new URL(import.meta.env.BASE_URL, location.href).href;
  const models = await loadGeneratedCatalogue(new URL('models/models.json', base).href, fetch);
  const { api } = startEngineWorker();
  const backend = await api.init({ wasmPaths: new URL('ort/', base).href, backend: options.backend ?? 'auto' });
  const defaultModelId = options.modelId ?? DEFAULT_MODEL_ID;
  const local = new LocalClient({
    engine: api as unknown as EngineWorkerApi, // comlink's Remote<T> has T's async methods
    backend,
    models,
    defaultModelId,
    proxy,
    onProgress: options.onProgress,
  });
  return {
    img2img: (r) => local.img2img(r),
    cancel: () => local.cancel(),
    backend,
    models,
    defaultModelId,
    prepare: () => local.prepare(defaultModelId),
  };
}
