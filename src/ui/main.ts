/**
 * The page: starts the client, shows the backend and why, loads the model with progress, and
 * runs the form's jobs and the gallery's upscales one at a time. It also exposes the client as
 * `window.sdapi` for scripts.
 */
import './pwa.ts';
import { createClient, type Client, type ClientMode } from '../api/create-client.ts';
import type { BackendPreference } from '../engine/runtime.ts';
import type { LoopPreference } from '../engine/engine.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import { formatBytes } from './format.ts';
import { mountModelPanel, type ModelPanel } from './model-panel.ts';
import { mountGenerateForm } from './generate-form.ts';
import { mountJobView } from './job-view.ts';
import { mountGallery } from './gallery.ts';
import { loadSettings, mountSettings, resolveConnection } from './settings.ts';
import type { Mode } from './contracts.ts';
import type { GenerationResponse } from '../api/responses.ts';
import { runMode } from './modes.ts';
import { endpointHost, mountEndpointGuard } from './endpoint-guard.ts';

declare global {
  interface Window {
    sdapi?: Client;
    /**
     * Resolves once `sdapi` is ready and the default model has been loaded, or has failed to load
     * (the status line says why; the next request tries the load again).
     */
    sdapiReady?: Promise<Client>;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

function setStatus(id: string, text: string, isError = false): void {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('error', isError);
}

const downloadStart = new Map<string, number>();
function showProgress(p: EngineProgress & { id: number | null }): void {
  if (p.phase === 'download') {
    const bar = $<HTMLProgressElement>('model-progress');
    bar.hidden = false;
    const started = downloadStart.get(p.file) ?? (downloadStart.set(p.file, performance.now()), performance.now());
    const seconds = Math.max(0.001, (performance.now() - started) / 1000);
    if (p.total) bar.value = p.loaded / p.total;
    const speed = p.fromCache ? 'from cache' : `${formatBytes(p.loaded / seconds)}/s`;
    setStatus('model-status', `${p.file}: ${formatBytes(p.loaded)}${p.total ? ` of ${formatBytes(p.total)}` : ''} (${speed})`);
  } else if (p.phase === 'load') {
    setStatus('model-status', p.message);
  } else {
    jobView.progress(p);
  }
}

let modelPanel: ModelPanel | null = null;

function loopParam(v: string | null): LoopPreference | undefined {
  return v === 'host' || v === 'naive' || v === 'auto' ? v : undefined;
}

async function start(): Promise<Client> {
  const backend = (params.get('backend') ?? 'auto') as BackendPreference;
  // ?mode= and ?endpoint= win for this visit; the key only ever comes from storage, never the URL,
  // and the saved key does not follow an address's endpoint until the user allows it (endpoint-guard.ts).
  const stored = loadSettings();
  const connection = resolveConnection(params, stored);
  const mode: ClientMode = connection.mode;
  const guard = mountEndpointGuard({
    banner: $('endpoint-banner'),
    connection,
    savedKey: stored.key,
    savedEndpoint: stored.endpoint,
    onAllow: () => showBackend(),
  });
  const client = await createClient({
    mode,
    endpoint: connection.endpoint || undefined,
    key: guard.key,
    hubMirror: stored.hubMirror || undefined,
    modelId: params.get('model') ?? undefined,
    backend,
    // ?loop=host|naive: the bench's comparisons; users get the fastest loop
    loop: loopParam(params.get('loop')),
    onProgress: showProgress,
  });
  const host = endpointHost(client.endpoint);
  const keyNote = () => (stored.key && !guard.key() ? `; your saved key is held back from ${host} until you allow it` : '');
  let local: { backend: string; reason: string } | null = client.backend ? { backend: client.backend.backend, reason: client.backend.reason } : null;
  function showBackend(): void {
    if (local && client.backend) {
      const f16 = `shader-f16: ${client.backend.shaderF16 ? 'yes' : 'no'}`;
      const fallback = mode === 'auto' ? ` (auto: the hosted API at ${host} when this cannot run${keyNote()})` : '';
      setStatus('backend', `Backend: ${local.backend.toUpperCase()} — ${local.reason}; ${f16}${fallback}`);
    } else {
      const why = connection.fromUrl.mode ? '?mode=remote in the address' : 'remote mode in Settings';
      setStatus('backend', `Backend: REMOTE — requests go to the hosted Stable Diffusion API at ${host} (${why}${keyNote()})`);
    }
  }
  if (client.modelStore) {
    const store = client.modelStore;
    modelPanel = mountModelPanel($('model-heading').parentElement!, store, client.defaultModelId, (id) => {
      const entry = store.entry(id);
      if (entry) form.applyModelDefaults(entry);
    });
  }
  // The API is usable from here on, even if the default model fails to load below: a request for
  // another model, or the next try at this one, must not need a reload.
  window.sdapi = client;
  showBackend();
  if (client.backend) {
    setStatus('model-status', `Loading ${client.defaultModelId}…`);
    const loaded = await client.prepare();
    if (loaded && 'status' in loaded) {
      const why = loaded.status === 'error' && typeof loaded.message === 'string' ? loaded.message : 'The model could not be loaded';
      setStatus('model-status', `${why} Generate tries again.`, true);
    } else if (loaded) {
      setStatus('model-status', `${client.defaultModelId} is ready`);
      local = { backend: loaded.backend, reason: loaded.backendReason };
      showBackend();
    }
    $<HTMLProgressElement>('model-progress').hidden = true;
  } else {
    setStatus('model-status', 'Models run on the hosted service');
  }
  document.body.dataset.ready = 'true';
  form.setBusy(false);
  return client;
}

/** The job the page shows now; the next waits for it, so the results panel follows one job at a time. */
let running: Promise<unknown> = Promise.resolve();

/** Runs a job from the form or the gallery: progress and results in the results panel, then the gallery. */
function runJob(mode: Mode, request: Record<string, unknown>): Promise<GenerationResponse> {
  const run = async (): Promise<GenerationResponse> => {
    const client = window.sdapi;
    if (!client) return { status: 'error', message: 'The engine has not started yet.' };
    // The upscaler is the only one there is: a model id would name a diffusion model it refuses.
    const withModel = mode === 'upscale' ? request : { ...request, model_id: modelPanel?.selected ?? null };
    form.setBusy(true);
    jobView.start(mode, withModel);
    try {
      const response = await runMode(client, mode, withModel);
      jobView.finish(response);
      form.showResult(response);
      void gallery.add(mode, withModel, response);
      return response;
    } finally {
      form.setBusy(false);
    }
  };
  const job = running.then(run, run);
  running = job.catch(() => undefined);
  return job;
}

const jobView = mountJobView($('job-panel'), { onCancel: () => window.sdapi?.cancel() });
const form = mountGenerateForm($<HTMLFormElement>('generate-form'), {
  onCancel: () => window.sdapi?.cancel(),
  onSubmit: (mode, request) => void runJob(mode, request),
});
const gallery = mountGallery($('gallery-panel'), {
  // The client starts later (start()); the gallery needs it only to follow "processing" answers.
  get client() { return window.sdapi; },
  onUseAsInit: (url) => form.useInitImage(url),
  onReuse: (endpoint, request) => form.load(endpoint, request),
  onUpscale: (request) => runJob('upscale', request),
});
mountSettings($<HTMLDialogElement>('settings-dialog'), $<HTMLButtonElement>('open-settings'), {
  active: resolveConnection(params, loadSettings()),
});

window.sdapiReady = start().catch((e: unknown) => {
  setStatus('backend', `The engine could not start: ${e instanceof Error ? e.message : String(e)}`);
  document.body.dataset.ready = 'error';
  throw e;
});
