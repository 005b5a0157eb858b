/**
 * The page: starts the client, shows the backend and why, loads the model with progress, and
 * drives img2img from the form. It also exposes the client as `window.sdapi` for scripts.
 */
import './pwa.ts';
import { createClient, type Client, type ClientMode } from '../api/create-client.ts';
import type { GenerationResponse } from '../api/responses.ts';
import type { BackendPreference } from '../engine/runtime.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import { formatBytes } from './format.ts';
import { mountModelPanel, type ModelPanel } from './model-panel.ts';

declare global {
  interface Window {
    sdapi?: Client;
    /** Resolves once `sdapi` is ready and the default model is loaded. */
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
function showProgress(p: EngineProgress): void {
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
  } else if (p.phase === 'denoise') {
    const bar = $<HTMLProgressElement>('job-progress');
    bar.hidden = false;
    bar.value = ((p.sample - 1) * p.totalSteps + p.step) / (p.samples * p.totalSteps);
    setStatus('job-status', `Image ${p.sample} of ${p.samples}: step ${p.step} of ${p.totalSteps}`);
  } else {
    setStatus('job-status', `Image ${p.sample} of ${p.samples}: decoding`);
  }
}

let modelPanel: ModelPanel | null = null;

function readForm(): Record<string, unknown> {
  const value = (id: string) => ($<HTMLInputElement>(id).value.trim() || null);
  return {
    key: '',
    model_id: modelPanel?.selected ?? null,
    prompt: value('prompt'),
    negative_prompt: value('negative_prompt'),
    init_image: initImageUrl ?? value('init_image'),
    width: value('width'),
    height: value('height'),
    samples: value('samples'),
    num_inference_steps: value('num_inference_steps'),
    guidance_scale: Number(value('guidance_scale') ?? 7.5),
    strength: Number(value('strength') ?? 0.7),
    seed: value('seed'),
    safety_checker: 'no',
    enhance_prompt: 'no',
    webhook: null,
    track_id: null,
  };
}

let initImageUrl: string | null = null;

function showResult(response: GenerationResponse): void {
  if (response.status === 'processing') {
    setStatus('job-status', `Queued as request ${response.id}`);
    return;
  }
  if (response.status !== 'success') {
    const m = response.message;
    const text = typeof m === 'string' ? m : Object.values(m).flat().join(' ');
    setStatus('job-status', text, true);
    return;
  }
  const results = $('results');
  for (const url of response.output) {
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.src = url;
    img.alt = `Generated: ${String(response.meta.prompt)}`;
    const cap = document.createElement('figcaption');
    cap.textContent = `seed ${String(response.meta.seed)} · ${response.meta.W}×${response.meta.H} · ${response.generationTime}s`;
    fig.append(img, cap);
    results.prepend(fig);
  }
  setStatus('job-status', `Done in ${response.generationTime}s on ${String(response.meta.backend ?? response.meta.runtime)}`);
}

/** Where the API key lives until the settings panel arrives; it is never read from the URL. */
const KEY_STORAGE = 'sdapi.key';

async function start(): Promise<Client> {
  const backend = (params.get('backend') ?? 'auto') as BackendPreference;
  const mode = (['local', 'remote', 'auto'].includes(params.get('mode') ?? '') ? params.get('mode') : 'auto') as ClientMode;
  const client = await createClient({
    mode,
    endpoint: params.get('endpoint') ?? undefined,
    key: localStorage.getItem(KEY_STORAGE) ?? undefined,
    modelId: params.get('model') ?? undefined,
    backend,
    onProgress: showProgress,
  });
  if (client.modelStore) modelPanel = mountModelPanel($('model-heading').parentElement!, client.modelStore, client.defaultModelId, () => undefined);
  if (client.backend) {
    setStatus('backend', `Backend: ${client.backend.backend.toUpperCase()} — ${client.backend.reason}`);
    setStatus('model-status', `Loading ${client.defaultModelId}…`);
    const loaded = await client.prepare();
    if (loaded && 'status' in loaded) {
      setStatus('model-status', loaded.status === 'error' && typeof loaded.message === 'string' ? loaded.message : 'The model could not be loaded', true);
      throw new Error('model failed to load');
    }
    if (loaded) {
      setStatus('model-status', `${client.defaultModelId} is ready`);
      setStatus('backend', `Backend: ${loaded.backend.toUpperCase()} — ${loaded.backendReason}${mode === 'auto' ? ' (auto: the hosted API when this cannot run)' : ''}`);
    }
    $<HTMLProgressElement>('model-progress').hidden = true;
  } else {
    setStatus('backend', 'Backend: REMOTE — requests go to the hosted Stable Diffusion API');
    setStatus('model-status', 'Models run on the hosted service');
  }
  window.sdapi = client;
  document.body.dataset.ready = 'true';
  $<HTMLButtonElement>('generate').disabled = false;
  return client;
}

$<HTMLInputElement>('init_file').addEventListener('change', (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (initImageUrl) URL.revokeObjectURL(initImageUrl);
  initImageUrl = file ? URL.createObjectURL(file) : null;
  const preview = $<HTMLImageElement>('init-preview');
  preview.hidden = !initImageUrl;
  if (initImageUrl) preview.src = initImageUrl;
});

$<HTMLFormElement>('img2img-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const client = window.sdapi;
  if (!client) return;
  $<HTMLButtonElement>('generate').disabled = true;
  $<HTMLButtonElement>('cancel').disabled = false;
  setStatus('job-status', 'Starting…');
  try {
    showResult(await client.img2img(readForm()));
  } finally {
    $<HTMLButtonElement>('generate').disabled = false;
    $<HTMLButtonElement>('cancel').disabled = true;
    $<HTMLProgressElement>('job-progress').hidden = true;
  }
});

$<HTMLButtonElement>('cancel').addEventListener('click', () => window.sdapi?.cancel());

window.sdapiReady = start().catch((e: unknown) => {
  setStatus('backend', `The engine could not start: ${e instanceof Error ? e.message : String(e)}`);
  document.body.dataset.ready = 'error';
  throw e;
});
