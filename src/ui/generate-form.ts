/**
 * The generate form: one form, five modes (text to image, image to image, inpaint, and the
 * image-editing outpaint and upscale of editing-fields.ts), every field of the hosted API, read
 * into that API's own request JSON for the selected mode's call. Ctrl/Cmd+Enter generates and Esc
 * cancels from anywhere on the page.
 */
import './styles/form.css';
import type { GenerationResponse } from '../api/responses.ts';
import { supportedSchedulerNames } from '../engine/schedulers/index.ts';
import type { CatalogueEntry } from '../models/catalogue.ts';
import type { FormHandle, FormOptions, Mode } from './contracts.ts';
import { addEditingFields } from './editing-fields.ts';
import { fittedSize } from '../engine/outpaint-canvas.ts';
import { mountInitImageInput } from './init-image-input.ts';
import { mountMaskEditor } from './mask-editor.ts';
import { MODES } from './modes.ts';

export { MODES };

/** The form's handle: the shared contract plus what only the page around it needs. */
export interface GenerateFormHandle extends FormHandle {
  mode(): Mode;
  setMode(mode: Mode): void;
  /** A job finished: its seed becomes the "reuse last seed" choice. */
  showResult(response: GenerationResponse): void;
  /** The seed of the last result, or null before one. */
  lastSeed(): number | null;
  /** Puts the last result's seed into the seed field (the "reuse" button). */
  reuseLastSeed(): void;
}

declare global {
  interface Window {
    /** The generate form's handle, for scripts and tests. */
    sdForm?: GenerateFormHandle;
  }
}

const ADVANCED_OPEN_KEY = 'sdapi.form.advanced-open';

/** "yes"/"no", booleans and "true"/"false" as the API accepts them. */
function flagValue(v: unknown): boolean {
  return v === true || (typeof v === 'string' && ['yes', 'true'].includes(v.trim().toLowerCase()));
}

const text = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

export function mountGenerateForm(form: HTMLFormElement, options: FormOptions): GenerateFormHandle {
  const $ = <T extends HTMLElement>(id: string) => form.querySelector<T>(`#${id}`)!;
  const input = (id: string) => $<HTMLInputElement>(id);
  // Before the tabs are read: it adds the editing modes' tabs.
  const editing = addEditingFields(form);
  const tabs = Array.from(form.querySelectorAll<HTMLButtonElement>('[role="tab"][data-mode]'));
  const panel = $<HTMLElement>('form-fields');
  const message = $<HTMLElement>('form-message');
  const generate = $<HTMLButtonElement>('generate');
  const cancel = $<HTMLButtonElement>('cancel');
  const preset = $<HTMLSelectElement>('size-preset');
  const scheduler = $<HTMLSelectElement>('scheduler');
  const seedReuse = $<HTMLButtonElement>('seed-reuse');
  const advanced = $<HTMLDetailsElement>('advanced');

  let mode: Mode = 'img2img';
  let busy = false;
  let lastSeed: number | null = null;

  const say = (text: string) => (message.textContent = text);

  // --- modes ------------------------------------------------------------------------------------
  const setMode = (next: Mode) => {
    mode = next;
    for (const tab of tabs) {
      const on = tab.dataset.mode === next;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on) panel.setAttribute('aria-labelledby', tab.id);
    }
    // Fields of other modes are hidden and disabled, so that their constraints do not block submit.
    for (const el of form.querySelectorAll<HTMLElement>('[data-modes]')) {
      const on = el.dataset.modes!.split(/\s+/).includes(next);
      el.hidden = !on;
      const controls = el.matches('input, select, textarea, fieldset') ? [el] : Array.from(el.querySelectorAll<HTMLElement>('input, select, textarea'));
      for (const c of controls) (c as HTMLInputElement).disabled = !on;
    }
    form.dataset.mode = next;
    editing.modeChanged(next);
    say('');
  };
  for (const tab of tabs) tab.addEventListener('click', () => setMode(tab.dataset.mode as Mode));
  // Arrow keys move between tabs and select them (the ARIA tabs pattern, automatic activation).
  form.querySelector('[role="tablist"]')!.addEventListener('keydown', (e) => {
    const key = (e as KeyboardEvent).key;
    const at = tabs.findIndex((t) => t.dataset.mode === mode);
    const to = key === 'ArrowRight' ? at + 1 : key === 'ArrowLeft' ? at - 1 : key === 'Home' ? 0 : key === 'End' ? tabs.length - 1 : null;
    if (to === null) return;
    e.preventDefault();
    const tab = tabs[(to + tabs.length) % tabs.length];
    setMode(tab.dataset.mode as Mode);
    tab.focus();
  });

  // --- images -----------------------------------------------------------------------------------
  // A message about a missing image or mask goes once the user acts on it.
  const maskEditor = mountMaskEditor($('mask-editor'), () => say(''));
  form.addEventListener('input', () => say(''));
  const init = mountInitImageInput($('init-fieldset'), {
    onImage: (image) => {
      maskEditor.setImage(image);
      editing.imageChanged(image);
    },
    onImageGiven: () => mode === 'text2img' && setMode('img2img'),
  });

  // --- size presets -----------------------------------------------------------------------------
  const syncPreset = () => {
    const key = `${input('width').value}x${input('height').value}`;
    preset.value = Array.from(preset.options).some((o) => o.value === key) ? key : 'custom';
  };
  const setSize = (w: number | string, h: number | string) => {
    input('width').value = String(w);
    input('height').value = String(h);
    syncPreset();
  };
  preset.addEventListener('change', () => {
    const m = /^(\d+)x(\d+)$/.exec(preset.value);
    if (m) setSize(m[1], m[2]);
    else input('width').focus();
  });
  input('width').addEventListener('input', syncPreset);
  input('height').addEventListener('input', syncPreset);
  syncPreset();

  // --- scheduler --------------------------------------------------------------------------------
  const ensureSchedulerOption = (name: string) => {
    if (!name || Array.from(scheduler.options).some((o) => o.value === name)) return;
    scheduler.add(new Option(name, name));
  };
  for (const name of supportedSchedulerNames()) ensureSchedulerOption(name);

  // --- seed -------------------------------------------------------------------------------------
  $<HTMLButtonElement>('seed-random').addEventListener('click', () => {
    // Empty is the API's "random": each job picks its own, and the response reports it.
    input('seed').value = '';
  });
  const reuseLastSeed = () => {
    if (lastSeed !== null) input('seed').value = String(lastSeed);
  };
  seedReuse.addEventListener('click', reuseLastSeed);

  // --- advanced panel ---------------------------------------------------------------------------
  // Open until the user closes it once; then it stays as they left it.
  const storedOpen = localStorage.getItem(ADVANCED_OPEN_KEY);
  if (storedOpen !== null) advanced.open = storedOpen === 'true';
  advanced.addEventListener('toggle', () => localStorage.setItem(ADVANCED_OPEN_KEY, String(advanced.open)));

  // --- reading ----------------------------------------------------------------------------------
  const value = (id: string) => input(id).value.trim() || null;
  const numberOrNull = (id: string) => {
    const n = Number(value(id) ?? NaN);
    return Number.isFinite(n) ? n : null;
  };
  const yesNo = (id: string) => (input(id).checked ? 'yes' : 'no');

  const read = (): { endpoint: Mode; request: Record<string, unknown> } => {
    // super_resolution's own fields, in the hosted docs' order: no prompt, no model.
    if (mode === 'upscale') {
      return {
        endpoint: mode,
        request: { key: '', url: init.value(), scale: editing.scale(), face_enhance: 'no', base64: 'no', webhook: null, track_id: null },
      };
    }
    if (mode === 'outpaint') return { endpoint: mode, request: readOutpaint() };
    const request: Record<string, unknown> = {
      key: '',
      prompt: value('prompt'),
      negative_prompt: value('negative_prompt'),
    };
    if (mode !== 'text2img') request.init_image = init.value();
    if (mode === 'inpaint') request.mask_image = maskEditor.maskUrl();
    Object.assign(request, {
      width: value('width'),
      height: value('height'),
      samples: value('samples'),
      num_inference_steps: value('num_inference_steps'),
      safety_checker: yesNo('safety_checker'),
      enhance_prompt: yesNo('enhance_prompt'),
      guidance_scale: numberOrNull('guidance_scale'),
    });
    if (mode !== 'text2img') request.strength = numberOrNull('strength');
    request.seed = numberOrNull('seed');
    request.webhook = null;
    request.track_id = null;
    // Extensions go only where set, so that a default request is the hosted API's own shape.
    if (scheduler.value) request.scheduler = scheduler.value;
    if (input('use_karras_sigmas').checked) request.use_karras_sigmas = 'yes';
    request.base64 = 'no';
    return { endpoint: mode, request };
  };

  /** The hosted outpaint call's fields (and the local extensions the form has), in its docs' order. */
  const readOutpaint = (): Record<string, unknown> => {
    const request: Record<string, unknown> = {
      key: '',
      prompt: value('prompt'),
      negative_prompt: value('negative_prompt'),
      image: init.value(),
      width: value('width'),
      height: value('height'),
      overlap_width: editing.overlapWidth(),
      num_inference_steps: value('num_inference_steps'),
      guidance_scale: numberOrNull('guidance_scale'),
      seed: numberOrNull('seed'),
      webhook: null,
      track_id: null,
    };
    if (scheduler.value) request.scheduler = scheduler.value;
    if (input('use_karras_sigmas').checked) request.use_karras_sigmas = 'yes';
    request.base64 = 'no';
    return request;
  };

  /** What the API would refuse anyway, said before a job is queued. */
  const problem = (request: Record<string, unknown>): string | null => {
    if (mode === 'upscale') return request.url ? null : 'Give an image to upscale: a URL, a file, or drop or paste one.';
    if (mode === 'outpaint') {
      if (!request.image) return 'Give an image to extend: a URL, a file, or drop or paste one.';
      const image = init.loaded();
      const w = Number(request.width);
      const h = Number(request.height);
      if (image && w > 0 && h > 0) {
        const drawn = fittedSize(image.width, image.height, w, h);
        if (drawn.width === w && drawn.height === h) {
          return `The image (${image.width}×${image.height}) already fills a ${w}×${h} canvas: make the width or the height larger to extend it.`;
        }
      }
      return null;
    }
    if (mode !== 'text2img' && !request.init_image) return 'Give an init image: a URL, a file, or drop or paste one.';
    if (mode === 'inpaint') {
      const mask = maskEditor.bitmap();
      if (!request.mask_image) return 'Wait for the init image to load, then paint the mask.';
      if (mask?.isEmpty()) return 'Paint the part of the image to repaint (the mask is all black: nothing would change).';
    }
    return null;
  };

  const submit = () => {
    const { endpoint, request } = read();
    const why = problem(request);
    say(why ?? '');
    if (why) return;
    options.onSubmit(endpoint, request);
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  cancel.addEventListener('click', () => options.onCancel());

  // --- keyboard ---------------------------------------------------------------------------------
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented) return;
    // An open dialog (settings) owns the keyboard, Esc included.
    if (document.querySelector('dialog[open]')) return;
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!generate.disabled) form.requestSubmit(generate);
    } else if (e.key === 'Escape' && busy) {
      e.preventDefault();
      options.onCancel();
    }
  });

  // --- loading a request ------------------------------------------------------------------------
  const load = (endpoint: Mode, request: Record<string, unknown>) => {
    setMode(MODES.includes(endpoint) ? endpoint : 'text2img');
    const r = request;
    // Each call names its image differently: init_image, outpaint's image, super_resolution's url.
    const image = [r.init_image, r.image, r.url].find((v): v is string => typeof v === 'string' && v !== '');
    editing.load(mode, r);
    if (mode === 'upscale') {
      // An upscale request has no prompt or generation fields: the form keeps the ones it has.
      if (image) init.set(image);
      return;
    }
    $<HTMLTextAreaElement>('prompt').value = text(r.prompt);
    input('negative_prompt').value = text(r.negative_prompt);
    if (r.width !== undefined || r.height !== undefined) setSize(text(r.width ?? input('width').value), text(r.height ?? input('height').value));
    for (const id of ['samples', 'num_inference_steps', 'guidance_scale', 'strength']) {
      if (r[id] !== undefined && r[id] !== null) input(id).value = text(r[id]);
    }
    input('seed').value = typeof r.seed === 'number' || (typeof r.seed === 'string' && r.seed.trim() !== '') ? text(r.seed) : '';
    const name = text(r.scheduler);
    ensureSchedulerOption(name);
    scheduler.value = name;
    input('use_karras_sigmas').checked = flagValue(r.use_karras_sigmas);
    input('enhance_prompt').checked = flagValue(r.enhance_prompt);
    input('safety_checker').checked = flagValue(r.safety_checker);
    if (image) init.set(image);
    if (typeof r.mask_image === 'string' && r.mask_image) {
      void maskEditor.loadMask(r.mask_image).catch(() => say('The mask of that request could not be loaded; paint it again.'));
    }
  };

  const handle: GenerateFormHandle = {
    read,
    load,
    useInitImage(url) {
      init.set(url, 'From the results');
      // Outpaint and upscale take an image too: they keep their mode.
      if (mode === 'text2img') setMode('img2img');
      $<HTMLElement>('init-fieldset').scrollIntoView({ block: 'nearest' });
    },
    applyModelDefaults(entry: CatalogueEntry) {
      const d = entry.defaults;
      if (!d) return;
      input('num_inference_steps').value = String(d.steps);
      input('guidance_scale').value = String(d.guidanceScale);
      input('strength').value = String(d.strength);
      setSize(d.width, d.height);
      ensureSchedulerOption(d.scheduler ?? '');
      scheduler.value = d.scheduler ?? '';
    },
    setBusy(next) {
      busy = next;
      generate.disabled = next;
      cancel.disabled = !next;
      form.setAttribute('aria-busy', String(next));
    },
    mode: () => mode,
    setMode,
    showResult(response) {
      if (response.status !== 'success') return;
      const seed = Number(response.meta.seed);
      if (!Number.isInteger(seed)) return;
      lastSeed = seed;
      seedReuse.hidden = false;
      seedReuse.textContent = `Reuse last seed (${seed})`;
    },
    lastSeed: () => lastSeed,
    reuseLastSeed,
  };
  setMode(mode);
  window.sdForm = handle;
  return handle;
}
