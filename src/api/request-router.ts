/**
 * Where each request runs in a client's mode: local, remote, or auto — here when a backend and the
 * model are available, on the hosted API when not (with a key), and again remotely when the local
 * run fails because the GPU was lost or ran out of memory. Every call of the endpoint table goes
 * through here: a call with a local handler runs here (in local and auto modes), one without goes
 * to the hosted API (auto and remote) or is refused with the reason (local). DOM-free, so it is
 * unit-tested with stand-in backends.
 */
import { errorResponse, type CallResponse, type ErrorResponse, type FetchResponse, type GenerationResponse } from './responses.ts';
import { byName, ENDPOINTS, type EndpointName, type LocalHandlers } from './endpoints.ts';
import type { Endpoint } from './validate-request.ts';
import type { BackendChoice } from '../engine/runtime.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';
import { requestKey } from './remote-client.ts';
import { snapshotRequest } from './request-snapshot.ts';

export type ClientMode = 'local' | 'remote' | 'auto';

type Generate = Record<Endpoint, (request: unknown) => Promise<GenerationResponse>>;

export interface RouterDeps {
  mode: ClientMode;
  /** The key saved in the app for the hosted API ('' when none, or while it is held back); a request's own key wins. */
  storedKey: () => string;
  /** null in remote mode, where no engine starts. */
  local: (Generate & { fetch(id: number | string): Promise<FetchResponse> }) | null;
  remote: Generate & {
    fetch(id: number | string, options?: { key?: string }): Promise<FetchResponse>;
    /** Any call of the endpoint table on the hosted API (RemoteClient.call). */
    call(name: EndpointName, request: Record<string, unknown>): Promise<CallResponse>;
  };
  /**
   * The calls the local engine answers, by name (create-client builds them from the local client);
   * empty or absent in remote mode. text2img, img2img and inpaint always run through `local`.
   */
  localHandlers?: LocalHandlers;
  backend: BackendChoice | null;
  /** The catalogue (it grows when the user adds models). */
  models: CatalogueEntry[];
  defaultModelId: string;
  /** In auto mode, whether a WASM-only device runs locally rather than remotely. */
  allowWasm: boolean;
  /** Whether a model's files are all downloaded and verified. */
  isDownloaded(modelId: string): Promise<boolean>;
  /** Whether a local error response came from a lost GPU or out-of-memory. */
  isDeviceFailure(response: unknown): boolean;
}

export function requestedModel(request: unknown): string | undefined {
  const id = typeof request === 'object' && request !== null ? (request as { model_id?: unknown }).model_id : undefined;
  return typeof id === 'string' && id.trim() !== '' ? id.trim() : undefined;
}

export function createRequestRouter(d: RouterDeps) {
  /** Remote jobs by id, with the key they were sent with, so fetch(id) asks with the same key (memory only). */
  const remoteIds = new Map<string, string>();
  const keyFor = (request: unknown) => requestKey(request) || d.storedKey();

  const viaRemote = async (endpoint: Endpoint, request: unknown, reason?: string): Promise<GenerationResponse> => {
    const response = await d.remote[endpoint](request);
    if ('id' in response && response.id !== undefined) remoteIds.set(String(response.id), requestKey(request));
    if (reason && response.status === 'success') response.meta = { ...response.meta, fallback_reason: reason };
    return response;
  };

  /** Why auto mode would not run this request here, or null when it would. */
  const reasonToLeave = async (request: unknown): Promise<string | null> => {
    if (d.backend?.backend === 'wasm' && !d.allowWasm) return `no local GPU backend: ${d.backend.reason}`;
    if (asksForLora(request)) return 'LoRA weights do not run locally yet';
    const id = requestedModel(request) ?? d.defaultModelId;
    const entry = d.models.find((m) => m.id === id);
    if (!entry) return `the model ${id} is not available on this device`;
    // A catalogue model that is not downloaded yet would start a multi-GB download mid-request.
    if (!entry.bundled && !(await d.isDownloaded(id))) return `the model ${id} is not downloaded on this device`;
    return null;
  };

  const generate = async (endpoint: Endpoint, original: unknown): Promise<GenerationResponse> => {
    // Read once: a getter or Proxy that throws is an error answer here, and cannot change its mind later.
    const snapshot = snapshotRequest(original);
    if (!snapshot.ok) return snapshot.error;
    const request = snapshot.fields;
    const local = d.local;
    if (!local) return viaRemote(endpoint, request);
    if (d.mode === 'local') return local[endpoint](request);
    const leave = await reasonToLeave(request);
    if (leave) {
      if (keyFor(request)) return viaRemote(endpoint, request, leave);
      // Without a key, a catalogue model is downloaded and run here (the model panel shows the progress).
      const known = d.models.some((m) => m.id === (requestedModel(request) ?? d.defaultModelId));
      if (!known || (d.backend?.backend === 'wasm' && !d.allowWasm)) {
        return errorResponse(`This request cannot run here (${leave}) and no API key is set for the hosted API.`);
      }
    }
    const response = await local[endpoint](request);
    if (keyFor(request) && d.isDeviceFailure(response)) {
      return viaRemote(endpoint, request, `the local run failed: ${String((response as ErrorResponse).message)}`);
    }
    return response;
  };

  const fetch = (id: number | string): Promise<FetchResponse> => {
    const remoteKey = remoteIds.get(String(id));
    if (!d.local || remoteKey !== undefined) return d.remote.fetch(id, remoteKey ? { key: remoteKey } : {});
    return d.local.fetch(id);
  };

  /** The hosted API's answer, marked with why it went there. */
  const viaRemoteCall = async (name: EndpointName, request: Record<string, unknown>, reason: string): Promise<CallResponse> => {
    const response = await d.remote.call(name, request);
    if (isObject(response) && 'id' in response && (typeof response.id === 'number' || typeof response.id === 'string')) {
      remoteIds.set(String(response.id), requestKey(request));
    }
    return withFallbackReason(response, reason);
  };

  /**
   * Any call of the endpoint table. text2img, img2img, inpaint and fetch keep their own routing
   * above; the rest run locally where a handler exists (auto mode first asks the generation calls'
   * reasons to leave: a model that is not here, a WASM-only device), otherwise remotely.
   */
  const call = async (name: string, original?: unknown): Promise<CallResponse> => {
    const entry = byName(name);
    if (!entry) return errorResponse(`There is no hosted call named "${name}". Known calls: ${ENDPOINTS.map((e) => e.name).join(', ')}.`);
    if (entry.name === 'text2img' || entry.name === 'img2img' || entry.name === 'inpaint') return generate(entry.name, original);
    const snapshot = original === undefined || original === null ? { ok: true as const, fields: {} } : snapshotRequest(original);
    if (!snapshot.ok) return snapshot.error;
    const request = snapshot.fields;
    if (entry.name === 'fetch') {
      const id = request.id;
      if (typeof id !== 'number' && typeof id !== 'string') return errorResponse({ id: ['A request id is needed to fetch a result.'] });
      return fetch(id);
    }
    const handler = d.local ? d.localHandlers?.[entry.name] : undefined;
    if (d.mode === 'remote' || !d.local) return d.remote.call(entry.name, request);
    if (d.mode === 'local') {
      if (handler) return (await handler(request)) as CallResponse;
      return errorResponse(`${entry.name} is not available locally; switch to remote or auto mode with an API key to run it on the hosted API.`);
    }
    const hasKey = Boolean(keyFor(request));
    if (!handler) {
      const reason = `${entry.name} has no local implementation`;
      if (hasKey) return viaRemoteCall(entry.name, request, reason);
      return errorResponse(`${entry.name} is not available locally and no API key is set for the hosted API.`);
    }
    // Model-based generation (the v4 community calls, outpaint) leaves for the same reasons as text2img.
    const leave = entry.response === 'images' ? await reasonToLeave(request) : null;
    if (leave) {
      if (hasKey) return viaRemoteCall(entry.name, request, leave);
      const known = d.models.some((m) => m.id === (requestedModel(request) ?? d.defaultModelId));
      if (!known || (d.backend?.backend === 'wasm' && !d.allowWasm)) {
        return errorResponse(`This request cannot run here (${leave}) and no API key is set for the hosted API.`);
      }
    }
    const response = (await handler(request)) as CallResponse;
    if (hasKey && d.isDeviceFailure(response)) {
      return viaRemoteCall(entry.name, request, `the local run failed: ${String((response as ErrorResponse).message)}`);
    }
    return response;
  };

  return { generate, fetch, call };
}

/** A request naming LoRA weights (lora_model), which the local engine refuses until it runs them. */
function asksForLora(request: unknown): boolean {
  const lora = isObject(request) ? request.lora_model : undefined;
  return typeof lora === 'string' && lora.trim() !== '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Says in an answer's meta why it came from the hosted API (an answer without meta gets one). A
 * list has no place for it and an error keeps the API's error shape; both go back unchanged.
 */
export function withFallbackReason(response: CallResponse, reason: string): CallResponse {
  if (!isObject(response) || response.status === 'error') return response;
  const meta = isObject(response.meta) ? response.meta : {};
  return { ...response, meta: { ...meta, fallback_reason: reason } };
}
