/**
 * How the page's parts talk to each other. main.ts mounts each part and wires them; a part knows
 * the others only through these handles.
 */
import type { Client } from '../api/create-client.ts';
import type { GenerationResponse } from '../api/responses.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';

/**
 * The form's modes. The first three are the hosted calls of the same names; outpaint is the hosted
 * `outpaint` and upscale its `super_resolution` (modes.ts maps them).
 */
export type Mode = 'text2img' | 'img2img' | 'inpaint' | 'outpaint' | 'upscale';

/** The generate form: every API field, the modes, the init image and the mask editor. */
export interface FormHandle {
  /** The request the form describes now (the API's own JSON) and the call it goes to. */
  read(): { endpoint: Mode; request: Record<string, unknown> };
  /** Fills the form from an earlier request ("reuse settings"). */
  load(endpoint: Mode, request: Record<string, unknown>): void;
  /** Makes this the form's image; from text2img it switches to img2img ("use as init image"). */
  useInitImage(url: string): void;
  /** The selected model changed: take its recommended defaults. */
  applyModelDefaults(entry: CatalogueEntry): void;
  setBusy(busy: boolean): void;
}

export interface FormOptions {
  onSubmit(endpoint: Mode, request: Record<string, unknown>): void;
  onCancel(): void;
}

/** Progress of the running job: step k of N, elapsed, ETA, live preview, and the results. */
export interface JobViewHandle {
  start(endpoint: Mode, request: Record<string, unknown>): void;
  progress(p: EngineProgress & { id: number | null }): void;
  finish(response: GenerationResponse): void;
}

export interface JobViewOptions {
  onCancel(): void;
}

/** Every result kept in IndexedDB with its request and meta. */
export interface GalleryHandle {
  add(endpoint: Mode, request: Record<string, unknown>, response: GenerationResponse): Promise<void>;
}

export interface GalleryOptions {
  client: Client;
  onUseAsInit(url: string): void;
  onReuse(endpoint: Mode, request: Record<string, unknown>): void;
  /**
   * Runs an upscale of a gallery image (the page's job runner: progress in the results panel, the
   * result in the gallery); answers when it is done. Without it the gallery offers no Upscale.
   */
  onUpscale?(request: Record<string, unknown>): Promise<GenerationResponse>;
}

/** What the settings dialog keeps (in localStorage) and the client starts with. */
export interface Settings {
  mode: 'auto' | 'local' | 'remote';
  key: string;
  endpoint: string;
  /** A Hugging Face mirror for model downloads; '' for huggingface.co itself. */
  hubMirror: string;
  theme: 'system' | 'light' | 'dark';
}
