/**
 * createClient(): the library's entry point. The same hosted-API calls run on the local engine
 * (a Web Worker), on the hosted service (remote, needs a key), or "auto": locally when a backend
 * and the model are available here, remotely when not, or when the GPU fails mid-run. Every call
 * of the endpoint table (endpoints.ts) is a method, named in camelCase (super_resolution ->
 * superResolution), and `call(name, request)` reaches any of them by its hosted name.
 */
import type { LoopPreference } from '../engine/engine.ts';
import { proxy, startEngineWorker, transfer } from './engine-worker.ts';
import { isDeviceFailure, LocalClient } from './local-client.ts';
import { createRequestRouter, type ClientMode } from './request-router.ts';
import { DEFAULT_ENDPOINT, RemoteClient } from './remote-client.ts';
import {
  errorResponse, type CallResponse, type ErrorResponse, type FetchResponse, type GenerationResponse, type SystemLoadResponse,
} from './responses.ts';
import { ENDPOINTS, methodName, type EndpointName, type EndpointSpec, type LocalHandlers, type MethodName } from './endpoints.ts';
import type { BackendChoice, BackendPreference } from '../engine/runtime.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import type { EngineWorkerApi, ModelManagementApi } from '../engine/worker-api.ts';
import { ModelManager } from './model-manager.ts';
import { modelList } from './model-list.ts';
import { realModels } from '../models/real-models.ts';
import type { LoadedModelInfo } from '../engine/engine.ts';
import { DEFAULT_MODEL_ID, loadGeneratedModels, type CatalogueEntry } from '../models/catalogue.ts';

export type { ClientMode } from './request-router.ts';

export interface ClientOptions {
  mode?: ClientMode;
  /**
   * The hosted API's key for requests that carry none of their own: remote mode, and auto mode's
   * fallback. A function is read on each call (the page holds the key back until the user confirms
   * an endpoint from the address bar). Never logged, never put in a URL.
   */
  key?: string | (() => string);
  /** The hosted API's base URL. */
  endpoint?: string;
  /** Model used when a request names none. */
  modelId?: string;
  /** auto: WebGPU when an adapter exists, WASM otherwise. */
  backend?: BackendPreference;
  /** The engine's denoising loop: auto (GPU-resident on WebGPU where it applies), host, or the bench's naive baseline. */
  loop?: LoopPreference;
  /** In auto mode, whether a WASM-only machine runs locally (slow for real models) rather than remotely. */
  allowWasm?: boolean;
  /** A mirror of the Hugging Face hub with the same paths (e.g. https://hf-mirror.com): where catalogue models download from. */
  hubMirror?: string;
  /** Base URL of the app's static files (where models/ and ort/ are served). */
  assetsBaseUrl?: string;
  onProgress?: (p: EngineProgress & { id: number | null }) => void;
}

/** The calls whose methods keep their own signatures (they predate the table). */
type CoreCall = 'text2img' | 'img2img' | 'inpaint' | 'fetch' | 'system_load';

/** One method per other call of the endpoint table, named in camelCase. */
export type EndpointMethods = {
  readonly [N in Exclude<EndpointName, CoreCall> as MethodName<N>]: (request?: unknown) => Promise<CallResponse>;
};

export interface Client extends EndpointMethods {
  /** Any call of the endpoint table by its hosted name, e.g. call('super_resolution', {url, scale}). */
  call(name: EndpointName | (string & {}), request?: unknown): Promise<CallResponse>;
  /** The endpoint table, for listing the calls (name, group, path, fields, local). */
  readonly endpoints: readonly EndpointSpec<EndpointName>[];
  text2img(request: unknown): Promise<GenerationResponse>;
  img2img(request: unknown): Promise<GenerationResponse>;
  inpaint(request: unknown): Promise<GenerationResponse>;
  fetch(id: number | string): Promise<FetchResponse>;
  systemLoad(): Promise<SystemLoadResponse | ErrorResponse>;
  /** Cancels a queued or running local request (the running one without an id). */
  cancel(id?: number): boolean;
  readonly mode: ClientMode;
  /** The hosted API's base URL this client sends remote requests to. */
  readonly endpoint: string;
  /** The local backend and why; null in remote mode, where no engine starts. */
  readonly backend: BackendChoice | null;
  readonly models: CatalogueEntry[];
  readonly defaultModelId: string;
  /** Loads the default model now rather than on the first request (local and auto modes). */
  prepare(): Promise<GenerationResponse | LoadedModelInfo | null>;
  /** Downloads, storage and deletion of local models; null in remote mode. */
  readonly modelStore: ModelManager | null;
}

export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const mode = options.mode ?? 'auto';
  const key = options.key ?? '';
  const storedKey = typeof key === 'function' ? key : () => key;
  const endpoint = options.endpoint ?? DEFAULT_ENDPOINT;
  const remote = new RemoteClient({ endpoint, key: storedKey });
  const base = options.assetsBaseUrl ?? new URL(import.meta.env.BASE_URL, location.href).href;
  const defaultModelId = options.modelId ?? DEFAULT_MODEL_ID;
  let local: LocalClient | null = null;
  let backend: BackendChoice | null = null;
  let models: CatalogueEntry[] = [];
  let modelStore: ModelManager | null = null;
  if (mode !== 'remote') {
    const generated = await loadGeneratedModels(new URL('models/models.json', base).href, fetch);
    models = [...generated.models, ...realModels(options.hubMirror || undefined)];
    const { api } = startEngineWorker();
    modelStore = new ModelManager(api as unknown as ModelManagementApi, models, proxy);
    await modelStore.restore();
    backend = await api.init({
      wasmPaths: new URL('ort/', base).href,
      backend: options.backend ?? 'auto',
      previewModel: generated.previewDecoder ?? undefined,
      upscalerModel: generated.upscaler ?? undefined,
      helpersUrl: new URL('engine/', base).href,
      loop: options.loop,
    });
    local = new LocalClient({
      engine: api as unknown as EngineWorkerApi, // comlink's Remote<T> has T's async methods
      backend,
      models,
      defaultModelId,
      proxy,
      transfer,
      onProgress: options.onProgress,
    });
  }
  const router = createRequestRouter({
    mode,
    storedKey,
    local,
    remote,
    localHandlers: local && modelStore ? localHandlers(local, modelStore) : {},
    backend,
    models,
    defaultModelId,
    allowWasm: options.allowWasm ?? true,
    isDownloaded: async (id) => Boolean((await modelStore?.status(id))?.complete),
    isDeviceFailure,
  });

  const methods: Record<string, (request?: unknown) => Promise<CallResponse>> = {};
  for (const entry of ENDPOINTS) {
    if (CORE_CALLS.has(entry.name)) continue;
    methods[methodName(entry.name)] = (r) => neverThrows(() => router.call(entry.name, r));
  }

  return {
    // Built from the table above: one entry per EndpointMethods member, by the same camelCase rule.
    ...(methods as unknown as EndpointMethods),
    call: (name, r) => neverThrows(() => router.call(name, r)),
    endpoints: ENDPOINTS,
    text2img: (r) => neverThrows(() => router.generate('text2img', r)),
    img2img: (r) => neverThrows(() => router.generate('img2img', r)),
    inpaint: (r) => neverThrows(() => router.generate('inpaint', r)),
    fetch: (id) => neverThrows(() => router.fetch(id)),
    systemLoad: () => neverThrows(async () => (local ? local.systemLoad() : remote.systemLoad())),
    cancel: (id) => {
      try {
        return local?.cancel(id) ?? false;
      } catch {
        return false;
      }
    },
    mode,
    endpoint,
    backend,
    models,
    defaultModelId,
    prepare: async () => (local ? local.prepare(defaultModelId) : null),
    modelStore,
  };
}

const CORE_CALLS: ReadonlySet<string> = new Set<CoreCall>(['text2img', 'img2img', 'inpaint', 'fetch', 'system_load']);

/**
 * The local engine's calls by name: the generation calls, the image-editing and v4 calls the local
 * client answers (LocalClient.handlers), and model_list from the model store, which knows what is
 * downloaded.
 */
function localHandlers(local: LocalClient, store: ModelManager): LocalHandlers {
  return {
    text2img: (r) => local.text2img(r),
    img2img: (r) => local.img2img(r),
    inpaint: (r) => local.inpaint(r),
    fetch: (r) => local.fetch(r.id),
    system_load: async () => local.systemLoad(),
    ...local.handlers(),
    model_list: async () => modelList(local.models, (id) => store.status(id)),
  };
}

/**
 * The API's promise to its callers: an answer in its own shapes, never an exception. Every input is
 * checked before this point; this catches what nobody foresaw and says so instead of rejecting.
 */
async function neverThrows<T>(call: () => Promise<T>): Promise<T | ErrorResponse> {
  try {
    return await call();
  } catch (e) {
    let reason: string;
    try {
      reason = e instanceof Error ? e.message : String(e);
    } catch {
      reason = 'an unreadable error';
    }
    return errorResponse(`The call failed unexpectedly: ${reason}`);
  }
}
