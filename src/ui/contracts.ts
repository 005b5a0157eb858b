/**
 * How the page's parts talk to each other. main.ts mounts each part and wires them; a part knows
 * the others only through these handles.
 */
import type { Client } from '../api/create-client.ts';
import type { GenerationResponse } from '../api/responses.ts';
import type { EngineProgress } from '../engine/jobs.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';

export type Mode = 'text2img' | 'img2img' | 'inpaint';

/** The generate form: every API field, the three modes, the init image and the mask editor. */
export interface FormHandle {
  /** The request the form describes now (the API's own JSON) and the call it goes to. */
  read(): { endpoint: Mode; request: Record<string, unknown> };
  /** Fills the form from an earlier request ("reuse settings"). */
  load(endpoint: Mode, request: Record<string, unknown>): void;
  /** Switches to img2img with this image ("use as init image"). */
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
