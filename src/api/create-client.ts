/**
 * createClient(): the library's entry point. The same hosted-API calls run on the local engine
 * (a Web Worker), on the hosted service (remote, needs a key), or "auto": locally when a backend
 * and the model are available here, remotely when not, or when the GPU fails mid-run.
 */
import { proxy, startEngineWorker } from './engine-worker.ts';
import { isDeviceFailure, LocalClient } from './local-client.ts';
import { DEFAULT_ENDPOINT, RemoteClient } from './remote-client.ts';
import {
  errorResponse, type ErrorResponse, type FetchResponse, type GenerationResponse, type SystemLoadResponse,
} from './responses.ts';
import type { Endpoint } from './validate-request.ts';
import type { BackendChoice, BackendPreference } from '../engine/runtime.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import type { EngineWorkerApi, ModelManagementApi } from '../engine/worker-api.ts';
import { ModelManager } from './model-manager.ts';
import { REAL_MODELS } from '../models/real-models.ts';
import type { LoadedModelInfo } from '../engine/engine.ts';
import { DEFAULT_MODEL_ID, loadGeneratedModels, type CatalogueEntry } from '../models/catalogue.ts';

export type ClientMode = 'local' | 'remote' | 'auto';

export interface ClientOptions {
  mode?: ClientMode;
  /** The hosted API's key: remote mode, and auto mode's fallback. Never logged, never put in a URL. */
  key?: string;
  /** The hosted API's base URL. */
  endpoint?: string;
  /** Model used when a request names none. */
  modelId?: string;
  /** auto: WebGPU when an adapter exists, WASM otherwise. */
  backend?: BackendPreference;
  /** In auto mode, whether a WASM-only machine runs locally (slow for real models) rather than remotely. */
  allowWasm?: boolean;
  /** Base URL of the app's static files (where models/ and ort/ are served). */
  assetsBaseUrl?: string;
  onProgress?: (p: EngineProgress & { id: number | null }) => void;
}

export interface Client {
  text2img(request: unknown): Promise<GenerationResponse>;
  img2img(request: unknown): Promise<GenerationResponse>;
  inpaint(request: unknown): Promise<GenerationResponse>;
  fetch(id: number | string): Promise<FetchResponse>;
  systemLoad(): Promise<SystemLoadResponse | ErrorResponse>;
  /** Cancels a queued or running local request (the running one without an id). */
  cancel(id?: number): boolean;
  readonly mode: ClientMode;
  /** The local backend and why; null in remote mode, where no engine starts. */
  readonly backend: BackendChoice | null;
  readonly models: CatalogueEntry[];
  readonly defaultModelId: string;
  /** Loads the default model now rather than on the first request (local and auto modes). */
  prepare(): Promise<GenerationResponse | LoadedModelInfo | null>;
  /** Downloads, storage and deletion of local models; null in remote mode. */
  readonly modelStore: ModelManager | null;
}

/** Where a request goes in auto mode, and why when it leaves the device. */
export function autoRoute(
  backend: BackendChoice,
  allowWasm: boolean,
  localModels: readonly string[],
  request: unknown,
): { local: true } | { local: false; reason: string } {
  if (backend.backend === 'wasm' && !allowWasm) return { local: false, reason: `no local GPU backend: ${backend.reason}` };
  const modelId = requestedModel(request);
  if (modelId !== undefined && !localModels.includes(modelId)) {
    return { local: false, reason: `the model ${modelId} is not available on this device` };
  }
  return { local: true };
}

function requestedModel(request: unknown): string | undefined {
  const id = typeof request === 'object' && request !== null ? (request as { model_id?: unknown }).model_id : undefined;
  return typeof id === 'string' && id.trim() !== '' ? id.trim() : undefined;
}

export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const mode = options.mode ?? 'auto';
  const key = options.key ?? '';
  const remote = new RemoteClient({ endpoint: options.endpoint ?? DEFAULT_ENDPOINT, key });
  const base = options.assetsBaseUrl ?? new URL(import.meta.env.BASE_URL, location.href).href;
  const defaultModelId = options.modelId ?? DEFAULT_MODEL_ID;
  let local: LocalClient | null = null;
  let backend: BackendChoice | null = null;
  let models: CatalogueEntry[] = [];
  let modelStore: ModelManager | null = null;
  if (mode !== 'remote') {
    const generated = await loadGeneratedModels(new URL('models/models.json', base).href, fetch);
    models = [...generated.models, ...REAL_MODELS];
    const { api } = startEngineWorker();
    modelStore = new ModelManager(api as unknown as ModelManagementApi, models, proxy);
    await modelStore.restore();
    backend = await api.init({
      wasmPaths: new URL('ort/', base).href,
      backend: options.backend ?? 'auto',
      previewModel: generated.previewDecoder ?? undefined,
    });
    local = new LocalClient({
      engine: api as unknown as EngineWorkerApi, // comlink's Remote<T> has T's async methods
      backend,
      models,
      defaultModelId,
      proxy,
      onProgress: options.onProgress,
    });
  }
  const remoteIds = new Set<string>();

  const viaRemote = async (endpoint: Endpoint, request: unknown, reason?: string): Promise<GenerationResponse> => {
    const response = await remote[endpoint](request);
    if ('id' in response && response.id !== undefined) remoteIds.add(String(response.id));
    if (reason && response.status === 'success') response.meta = { ...response.meta, fallback_reason: reason };
    return response;
  };

  const localModelKnown = (request: unknown) => {
    const id = requestedModel(request) ?? defaultModelId;
    return models.some((m) => m.id === id) && (backend?.backend !== 'wasm' || (options.allowWasm ?? true));
  };

  const generate = async (endpoint: Endpoint, request: unknown): Promise<GenerationResponse> => {
    if (!local) return viaRemote(endpoint, request);
    if (mode === 'local') return local[endpoint](request);
    let route = autoRoute(backend!, options.allowWasm ?? true, models.map((m) => m.id), request);
    if (route.local) {
      // A catalogue model that is not downloaded yet would start a multi-GB download mid-request.
      const id = requestedModel(request) ?? defaultModelId;
      const entry = models.find((m) => m.id === id);
      if (entry && !entry.bundled && !(await modelStore!.status(id))?.complete) route = { local: false, reason: `the model ${id} is not downloaded on this device` };
    }
    if (!route.local) {
      if (key) return viaRemote(endpoint, request, route.reason);
      // Without a key a catalogue model is downloaded and run here (the model panel shows the progress).
      if (!localModelKnown(request)) return errorResponse(`This request cannot run here (${route.reason}) and no API key is set for the hosted API.`);
    }
    const response = await local[endpoint](request);
    if (isDeviceFailure(response) && key) return viaRemote(endpoint, request, `the local run failed: ${String((response as ErrorResponse).message)}`);
    return response;
  };

  return {
    text2img: (r) => generate('text2img', r),
    img2img: (r) => generate('img2img', r),
    inpaint: (r) => generate('inpaint', r),
    fetch: (id) => (!local || remoteIds.has(String(id)) ? remote.fetch(id) : local.fetch(id)),
    systemLoad: async () => (local ? local.systemLoad() : remote.systemLoad()),
    cancel: (id) => local?.cancel(id) ?? false,
    mode,
    backend,
    models,
    defaultModelId,
    prepare: async () => (local ? local.prepare(defaultModelId) : null),
    modelStore,
  };
}
