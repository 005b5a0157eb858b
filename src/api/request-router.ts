/**
 * Where each request runs in a client's mode: local, remote, or auto — here when a backend and the
 * model are available, on the hosted API when not (with a key), and again remotely when the local
 * run fails because the GPU was lost or ran out of memory. DOM-free, so it is unit-tested with
 * stand-in backends.
 */
import { errorResponse, type ErrorResponse, type FetchResponse, type GenerationResponse } from './responses.ts';
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
  remote: Generate & { fetch(id: number | string, options?: { key?: string }): Promise<FetchResponse> };
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

  return {
    generate,
    fetch: (id: number | string) => {
      const remoteKey = remoteIds.get(String(id));
      if (!d.local || remoteKey !== undefined) return d.remote.fetch(id, remoteKey ? { key: remoteKey } : {});
      return d.local.fetch(id);
    },
  };
}
