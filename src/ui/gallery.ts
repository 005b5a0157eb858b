/**
 * The gallery: every result kept in IndexedDB with its request and meta, across reloads.
 *
 * It reads the history store that LocalClient already writes for fetch(id) (one record per
 * finished request: response, request without key, createdAt, PNG bytes), so a result is stored
 * once and the gallery and fetch(id) can never disagree. Results from the hosted API (remote and
 * auto mode), which LocalClient never sees, are saved into the same store by `add`.
 *
 * Each card: open large, download the PNG with its A1111 `parameters` text, use as init image,
 * reuse settings, upscale 2× (upscale-action.ts), copy as a hosted-API request (JSON and curl, key
 * left empty), delete.
 */
import './styles/gallery.css';
import { HistoryStore, type HistoryRecord, type HistorySummary } from '../api/history-store.ts';
import { IMAGE_FIELDS, isImageReference } from '../api/image-reference.ts';
import { exportRequest, reproducibleRequest } from '../api/request-export.ts';
import type { GenerationResponse, SuccessResponse } from '../api/responses.ts';
import type { GalleryHandle, GalleryOptions, Mode } from './contracts.ts';
import { formatBytes } from './format.ts';
import { callOf, modeLabel, modeOf } from './modes.ts';
import { a1111Parameters, withPngText } from './png-parameters.ts';
import { createUpscaleAction } from './upscale-action.ts';

/**
 * The contract's options; `client` is optional because the gallery reads the history store
 * directly and needs the client only to follow a request answered "processing".
 */
export type GalleryMountOptions = Omit<GalleryOptions, 'client'> & {
  client?: GalleryOptions['client'];
  /** The store to read; default the one LocalClient writes. */
  history?: HistoryStore;
};

interface Item {
  id: number;
  createdAt: number;
  endpoint: Mode;
  request: Record<string, unknown>;
  response: SuccessResponse;
  /** One per image: its PNG (null when only a remote URL was kept) and the URL shown. */
  images: { blob: Blob | null; url: string }[];
  /** The PNG bytes plus the record's JSON, roughly what IndexedDB holds for it. */
  bytes: number;
  el: HTMLLIElement;
}

/** How long to follow a request answered "processing" before leaving it to the next reload. */
const FOLLOW_LIMIT_MS = 10 * 60_000;
/** Cards read per page: the first ones show without reading the rest of a long history. */
const PAGE_SIZE = 24;

export function mountGallery(container: HTMLElement, options: GalleryMountOptions): GalleryHandle {
  let history: HistoryStore | null = options.history ?? null;
  try {
    history ??= new HistoryStore();
  } catch {
    history = null;
  }
  const items = new Map<number, Item>();

  container.classList.add('gallery');
  const storage = el('p', { class: 'gallery-storage', id: 'gallery-storage', role: 'status', 'aria-live': 'polite' });
  const status = el('p', { class: 'status gallery-status', id: 'gallery-status', role: 'status', 'aria-live': 'polite' });
  const empty = el('p', { class: 'gallery-empty', id: 'gallery-empty' }, 'No results yet. Every image you generate is kept here, also after a reload.');
  const list = el('ul', { class: 'gallery-grid', id: 'gallery-items', 'aria-label': 'Saved results' });
  const more = el('button', { type: 'button', class: 'secondary gallery-more', id: 'gallery-more', hidden: '' }, 'Show older results');
  const lightbox = buildLightbox();
  const requestDialog = buildRequestDialog();
  container.append(storage, status, empty, list, more, lightbox.dialog, requestDialog.dialog);
  const onUpscale = options.onUpscale;
  const upscaler = onUpscale ? createUpscaleAction({ container, run: onUpscale, say: (text, isError) => say(text, isError) }) : null;
  /** How many cards the gallery shows: a page, plus a page per "Show older results". */
  let wanted = PAGE_SIZE;
  let hasOlder = false;
  more.addEventListener('click', () => {
    wanted += PAGE_SIZE;
    void refresh();
  });

  const say = (text: string, isError = false) => {
    status.textContent = text;
    status.classList.toggle('error', isError);
  };

  // --- loading from the store -------------------------------------------------------------------
  let chain: Promise<void> = Promise.resolve();
  /** Brings the cards in line with the store (new records in, deleted ones out), one run at a time. */
  const refresh = (): Promise<void> => (chain = chain.then(sync, sync));

  async function sync(): Promise<void> {
    if (!history) {
      say('The gallery cannot keep results: this browser gives the page no IndexedDB.', true);
      return;
    }
    let summaries: HistorySummary[];
    const unreadable: number[] = [];
    try {
      const page = await history.page({ limit: wanted, filter: shown });
      summaries = page.items;
      unreadable.push(...page.unreadable);
      hasOlder = page.next !== null;
    } catch (e) {
      say(`The gallery could not be read: ${message(e)}`, true);
      return;
    }
    const keep = new Set(summaries.map((s) => s.id));
    for (const item of items.values()) if (!keep.has(item.id)) drop(item);
    // Newest first, as the store lists them; moving existing nodes keeps their images loaded.
    const place = () => {
      // Moving a card takes it out of the document for a moment, which drops its focus: give it back,
      // so a keyboard user who started an action (an upscale adds a card above) stays where they were.
      const focused = list.contains(document.activeElement) ? (document.activeElement as HTMLElement) : null;
      list.replaceChildren(...summaries.flatMap((s) => items.get(s.id)?.el ?? []));
      if (focused?.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
    };
    for (const s of summaries) {
      if (items.has(s.id)) continue;
      try {
        const record = await history.load(s.id);
        if (!record || record.response.status !== 'success') continue;
        items.set(s.id, build(record, record.response));
      } catch {
        // One record this page cannot show must not cost the others: it is skipped, and said so.
        unreadable.push(s.id);
        continue;
      }
      // Each card shows as soon as it is built, not after the whole page is read.
      place();
      empty.hidden = true;
    }
    place();
    empty.hidden = items.size > 0;
    more.hidden = !hasOlder;
    if (unreadable.length) {
      const ids = unreadable.slice(0, 5).join(', ');
      say(`${unreadable.length === 1 ? '1 stored result' : `${unreadable.length} stored results`} could not be read and ${unreadable.length === 1 ? 'is' : 'are'} not shown (id ${ids}${unreadable.length > 5 ? ', …' : ''}).`);
    }
    await showStorage();
  }

  async function showStorage(): Promise<void> {
    const own = [...items.values()].reduce((n, i) => n + i.bytes, 0);
    const images = [...items.values()].reduce((n, i) => n + i.images.length, 0);
    let line = `${items.size} ${items.size === 1 ? 'result' : 'results'}${hasOlder ? ' shown' : ''}, ${images} ${images === 1 ? 'image' : 'images'}: ${formatBytes(own)} in the gallery`;
    try {
      const estimate = await navigator.storage?.estimate?.();
      if (estimate?.usage !== undefined) {
        line += ` · this site stores ${formatBytes(estimate.usage)}${estimate.quota ? ` of ${formatBytes(estimate.quota)} allowed` : ''} (models included)`;
      }
    } catch {
      // No estimate (older browsers, some private modes): the gallery's own count still stands.
    }
    storage.textContent = line;
    storage.dataset.bytes = String(own);
  }

  // --- cards ------------------------------------------------------------------------------------
  function build(record: HistoryRecord, response: SuccessResponse): Item {
    const pngs = record.pngs ?? [];
    const images = pngs.length
      ? pngs.map((png) => {
        const blob = new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' });
        return { blob, url: URL.createObjectURL(blob) };
      })
      : response.output.filter((u): u is string => typeof u === 'string').map((url) => ({ blob: null, url }));
    const { pngs: _pngs, ...withoutPngs } = record;
    const bytes = pngs.reduce((n, p) => n + p.byteLength, 0) + JSON.stringify(withoutPngs).length;
    const meta = response.meta ?? {};
    const item: Item = {
      id: record.id,
      createdAt: record.createdAt,
      endpoint: modeOf(record.request, meta),
      request: record.request,
      response,
      images,
      bytes,
      el: document.createElement('li'),
    };
    renderCard(item);
    return item;
  }

  function renderCard(item: Item): void {
    const meta = item.response.meta ?? {};
    const prompt = String(meta.prompt ?? item.request.prompt ?? '');
    const li = item.el;
    li.className = 'gallery-item';
    li.dataset.id = String(item.id);
    const thumb = el('button', { type: 'button', class: 'gallery-thumb', 'data-action': 'open', 'aria-label': `Open result ${item.id} large` });
    const img = el('img', { src: item.images[0]?.url ?? '', alt: altText(item, prompt), loading: 'lazy', decoding: 'async' });
    thumb.append(img);
    if (item.images.length > 1) thumb.append(el('span', { class: 'gallery-count' }, `${item.images.length} images`));
    const info = el('div', { class: 'gallery-info' },
      el('p', { class: 'gallery-prompt', title: prompt }, headline(item, prompt)),
      el('p', { class: 'gallery-meta' }, summaryLine(item)),
      el('p', { class: 'gallery-date' }, el('time', { datetime: new Date(item.createdAt).toISOString() }, formatDate(item.createdAt))),
    );
    li.replaceChildren(thumb, info, actions(item));
  }

  function actions(item: Item, imageIndex = 0, inDialog = false): HTMLElement {
    const bar = el('div', { class: 'gallery-actions', role: 'group', 'aria-label': `Result ${item.id}` });
    const button = (action: string, label: string, title: string, extra: Record<string, string> = {}) =>
      el('button', { type: 'button', 'data-action': action, 'data-id': String(item.id), 'data-index': String(imageIndex), title, ...extra }, label);
    if (!inDialog) bar.append(button('download', 'Download PNG', 'The image with its generation parameters (A1111 style) in the PNG'));
    bar.append(
      button('init', 'Use as init image', 'Start an image-to-image job from this image'),
      button('reuse', 'Reuse settings', 'Put this request back into the form'),
    );
    if (upscaler) bar.append(upscaler.button(item.id, imageIndex));
    bar.append(
      button('api', 'Copy as API request', 'The hosted API request (JSON and curl) for this result, key left empty'),
      button('delete', 'Delete', 'Delete from the gallery and from this device', { class: 'gallery-delete' }),
    );
    return bar;
  }

  function drop(item: Item): void {
    for (const image of item.images) if (image.blob) URL.revokeObjectURL(image.url);
    item.el.remove();
    items.delete(item.id);
    if (lightbox.dialog.dataset.id === String(item.id)) lightbox.dialog.close();
  }

  // --- actions ----------------------------------------------------------------------------------
  const onAction = (e: Event) => {
    const target = (e.target as HTMLElement).closest<HTMLElement>('[data-action]');
    if (!target) return;
    const item = items.get(Number(target.dataset.id ?? target.closest<HTMLElement>('[data-id]')?.dataset.id));
    if (!item) return;
    const index = Number(target.dataset.index ?? 0);
    void act(target.dataset.action!, item, index).catch((err: unknown) => say(message(err), true));
  };
  list.addEventListener('click', onAction);
  lightbox.dialog.addEventListener('click', onAction);

  async function act(action: string, item: Item, index: number): Promise<void> {
    switch (action) {
      case 'open':
        return openLarge(item);
      case 'download':
        return download(item, index);
      case 'init': {
        const image = item.images[index] ?? item.images[0];
        // A URL of its own: the form keeps it after this card is deleted or the gallery refreshes.
        const url = image.blob ? URL.createObjectURL(image.blob) : image.url;
        lightbox.dialog.close();
        options.onUseAsInit(url);
        say(`Result ${item.id} is now the init image.`);
        return;
      }
      case 'reuse': {
        lightbox.dialog.close();
        const request = reproducibleRequest(item.request, item.response.meta ?? {});
        // Images sent inline are kept once beside the record (the record has a reference): bring them back.
        if (history && IMAGE_FIELDS.some((f) => isImageReference(request[f]))) {
          const inputs = await history.loadInputs(item.id).catch(() => ({}) as Awaited<ReturnType<HistoryStore['loadInputs']>>);
          for (const f of IMAGE_FIELDS) {
            if (!isImageReference(request[f])) continue;
            const image = inputs[f];
            if (image) request[f] = URL.createObjectURL(new Blob([image.bytes], { type: image.mimeType }));
            else delete request[f];
          }
        }
        options.onReuse(item.endpoint, request);
        say(`The settings of result ${item.id} are back in the form.`);
        return;
      }
      case 'upscale': {
        const image = item.images[index] ?? item.images[0];
        if (!upscaler || !image) return;
        // The large view would hide the results panel, where the upscale's progress shows.
        lightbox.dialog.close();
        return upscaler.upscale({ id: item.id, index, blob: image.blob, url: image.url });
      }
      case 'api':
        return showRequest(item);
      case 'delete':
        return remove(item);
    }
  }

  async function download(item: Item, index: number): Promise<void> {
    const image = item.images[index];
    if (!image) return;
    const blob = image.blob ?? (await (await fetch(image.url)).blob());
    const png = new Uint8Array(await blob.arrayBuffer());
    const meta = item.response.meta ?? {};
    const withText = withPngText(png, a1111Parameters(item.request, meta, index));
    const url = URL.createObjectURL(new Blob([withText as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
    const seeds = Array.isArray(meta.seeds) ? meta.seeds : [];
    const a = el('a', { href: url, download: `sd-${item.id}-${String(seeds[index] ?? meta.seed ?? index)}.png` });
    document.body.append(a);
    a.click();
    a.remove();
    // The download has its own copy once it starts; keep the URL a while for slow starts.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  async function remove(item: Item): Promise<void> {
    if (!history) return;
    const next = (item.el.nextElementSibling ?? item.el.previousElementSibling) as HTMLElement | null;
    await history.delete(item.id);
    drop(item);
    empty.hidden = items.size > 0;
    say(`Result ${item.id} was deleted.`);
    // Keep keyboard users in the list rather than dropping focus onto the page.
    (next?.querySelector<HTMLElement>('.gallery-thumb') ?? container.querySelector<HTMLElement>('h2'))?.focus?.();
    await showStorage();
  }

  function openLarge(item: Item): void {
    const meta = item.response.meta ?? {};
    const d = lightbox;
    d.dialog.dataset.id = String(item.id);
    d.title.textContent = `Result ${item.id} · ${modeLabel(item.endpoint)}`;
    const seeds = Array.isArray(meta.seeds) ? meta.seeds : [];
    d.images.replaceChildren(...item.images.map((image, i) => {
      const seed = seeds[i] ?? meta.seed;
      // An upscale has no seed of its own.
      const caption = el('figcaption', {}, `Image ${i + 1} of ${item.images.length}${item.endpoint === 'upscale' && seed === undefined ? '' : ` · seed ${String(seed ?? '?')}`}`);
      const dl = el('button', { type: 'button', 'data-action': 'download', 'data-id': String(item.id), 'data-index': String(i) }, 'Download PNG');
      caption.append(' ', dl);
      // Each image of a multi-image result can be upscaled on its own.
      if (upscaler && item.images.length > 1) caption.append(' ', upscaler.button(item.id, i));
      return el('figure', {}, el('img', { src: image.url, alt: altText(item, String(meta.prompt ?? '')) }), caption);
    }));
    d.details.replaceChildren(...details(item).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    d.parameters.textContent = a1111Parameters(item.request, meta, 0);
    d.actions.replaceChildren(actions(item, 0, true));
    if (!d.dialog.open) d.dialog.showModal();
    d.close.focus();
  }

  async function showRequest(item: Item): Promise<void> {
    const out = exportRequest(callOf(item.endpoint), item.request, item.response.meta ?? {});
    const d = requestDialog;
    d.url.textContent = out.url;
    d.json.textContent = out.json;
    d.curl.textContent = out.curl;
    d.warnings.replaceChildren(...out.warnings.map((w) => el('li', {}, w)));
    d.warnings.hidden = out.warnings.length === 0;
    if (!d.dialog.open) d.dialog.showModal();
    d.copy(out.json, 'The JSON request');
  }

  // --- add and follow -----------------------------------------------------------------------------
  async function add(_endpoint: Mode, request: Record<string, unknown>, response: GenerationResponse): Promise<void> {
    if (response.status === 'processing') {
      void follow(response.id, request);
      return;
    }
    if (response.status !== 'success') return;
    // LocalClient stored its own result before answering; a hosted result is stored here.
    if (response.meta?.runtime !== 'local') await saveRemote(request, response).catch((e: unknown) => say(`The result could not be kept: ${message(e)}`, true));
    await refresh();
  }

  /** A request answered "processing" (instant_response): show it once its result is in. */
  async function follow(id: number | string, request: Record<string, unknown>): Promise<void> {
    const client = options.client;
    if (!client) return;
    const until = Date.now() + FOLLOW_LIMIT_MS;
    while (Date.now() < until) {
      const r = await client.fetch(id).catch(() => null);
      if (!r || r.status !== 'processing') {
        if (r?.status === 'success') await add(modeOf(request, r.meta), request, r);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, Math.max(1_000, r.eta * 1000))));
    }
  }

  async function saveRemote(request: Record<string, unknown>, response: SuccessResponse): Promise<void> {
    if (!history) return;
    // The hosted service's links expire; keep the bytes when its CORS allows reading them.
    const pngs = await Promise.all(response.output.map(async (url) => {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    })).catch(() => undefined);
    // A local id, so it never collides with a local request; the response keeps the hosted id.
    const id = await history.nextId();
    await history.save(id, { response, request, createdAt: Date.now(), pngs });
  }

  // Results made by scripts through window.sdapi (not the form) show up when the page is looked at again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
  void refresh();
  return { add };
}

// --- dialogs --------------------------------------------------------------------------------------

function buildLightbox() {
  const title = el('h3', { id: 'gallery-lightbox-title' });
  const close = el('button', { type: 'button', class: 'gallery-close', 'aria-label': 'Close' }, '×');
  const images = el('div', { class: 'gallery-large' });
  const details = el('dl', { class: 'gallery-details' });
  const parameters = el('pre', { class: 'gallery-parameters', id: 'gallery-parameters', 'aria-label': 'Generation parameters (A1111)' });
  const actions = el('div', { class: 'gallery-dialog-actions' });
  const dialog = el('dialog', { class: 'gallery-dialog', id: 'gallery-lightbox', 'aria-labelledby': 'gallery-lightbox-title' },
    el('header', {}, title, close),
    el('div', { class: 'gallery-lightbox-main' },
      images,
      el('div', { class: 'gallery-lightbox-side' },
        el('div', { class: 'gallery-dialog-body' }, details, el('h4', {}, 'Parameters (as AUTOMATIC1111 writes them)'), parameters),
        actions,
      ),
    ),
  );
  close.addEventListener('click', () => dialog.close());
  closeOnBackdrop(dialog);
  return { dialog, title, close, images, details, parameters, actions };
}

function buildRequestDialog() {
  const url = el('code', {});
  const json = el('pre', { class: 'gallery-code', id: 'gallery-request-json', tabindex: '0' });
  const curl = el('pre', { class: 'gallery-code', id: 'gallery-request-curl', tabindex: '0' });
  const warnings = el('ul', { class: 'gallery-warnings' });
  const note = el('p', { class: 'status', id: 'gallery-request-status', role: 'status', 'aria-live': 'polite' });
  const close = el('button', { type: 'button', class: 'gallery-close', 'aria-label': 'Close' }, '×');
  const copyJson = el('button', { type: 'button', 'data-copy': 'json' }, 'Copy JSON');
  const copyCurl = el('button', { type: 'button', 'data-copy': 'curl' }, 'Copy curl');
  const dialog = el('dialog', { class: 'gallery-dialog gallery-request', id: 'gallery-request', 'aria-labelledby': 'gallery-request-title' },
    el('header', {}, el('h3', { id: 'gallery-request-title' }, 'Hosted API request'), close),
    el('div', { class: 'gallery-dialog-body' },
      el('p', {}, 'POST this JSON to ', url, '. The key is left empty: put your own API key in before sending.'),
      warnings,
      el('div', { class: 'gallery-code-head' }, el('h4', {}, 'JSON'), copyJson),
      json,
      el('div', { class: 'gallery-code-head' }, el('h4', {}, 'curl'), copyCurl),
      curl,
      note,
    ),
  );
  const copy = async (text: string, what: string) => {
    try {
      await navigator.clipboard.writeText(text);
      note.textContent = `${what} is on the clipboard.`;
      note.classList.remove('error');
    } catch {
      note.textContent = `${what} could not be put on the clipboard (no permission): select it above and copy it.`;
      note.classList.add('error');
    }
  };
  copyJson.addEventListener('click', () => void copy(json.textContent ?? '', 'The JSON request'));
  copyCurl.addEventListener('click', () => void copy(curl.textContent ?? '', 'The curl command'));
  close.addEventListener('click', () => dialog.close());
  closeOnBackdrop(dialog);
  return { dialog, url, json, curl, warnings, copy: (text: string, what: string) => void copy(text, what) };
}

/** A click on the dimmed backdrop (outside the dialog's box) closes it, as lightboxes do. */
function closeOnBackdrop(dialog: HTMLDialogElement): void {
  dialog.addEventListener('click', (e) => {
    if (e.target !== dialog) return;
    const r = dialog.getBoundingClientRect();
    const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
    if (!inside) dialog.close();
  });
}

// --- helpers --------------------------------------------------------------------------------------

/** Finished successes with something to show; failed requests stay in the store for fetch(id) only. */
function shown(s: HistorySummary): boolean {
  return s.response.status === 'success' && (s.pngCount > 0 || (Array.isArray(s.response.output) && s.response.output.length > 0));
}

function summaryLine(item: Item): string {
  const meta = item.response.meta ?? {};
  if (item.endpoint === 'upscale') {
    const from = meta.input_W !== undefined ? ` from ${String(meta.input_W)}×${String(meta.input_H)}` : '';
    return [`${modeLabel('upscale')} ${String(meta.scale ?? item.request.scale ?? '?')}×${from}`, `${String(meta.W ?? '?')}×${String(meta.H ?? '?')}`].join(' · ');
  }
  const parts = [modeLabel(item.endpoint), `seed ${String(meta.seed ?? '?')}`, `${String(meta.W ?? item.request.width ?? '?')}×${String(meta.H ?? item.request.height ?? '?')}`];
  if (meta.steps !== undefined) parts.push(`${String(meta.steps)} steps`);
  if (meta.model) parts.push(String(meta.model));
  return parts.join(' · ');
}

function details(item: Item): [string, string][] {
  const meta = item.response.meta ?? {};
  const r = item.request;
  const rows: [string, unknown][] = [
    ['Prompt', meta.prompt ?? r.prompt],
    ['Negative prompt', meta.negative_prompt || r.negative_prompt],
    ['Seed', Array.isArray(meta.seeds) && meta.seeds.length > 1 ? meta.seeds.join(', ') : meta.seed],
    ['Size', meta.W !== undefined ? `${String(meta.W)}×${String(meta.H)}` : undefined],
    ['Steps', meta.steps],
    ['Guidance scale', meta.guidance_scale],
    ['Strength', meta.strength],
    ['Overlap', meta.overlap_width !== undefined ? `${String(meta.overlap_width)} px` : undefined],
    ['Upscaled', meta.scale !== undefined && meta.input_W !== undefined ? `${String(meta.scale)}× from ${String(meta.input_W)}×${String(meta.input_H)}` : undefined],
    ['Scheduler', meta.scheduler],
    ['Model', meta.model],
    ['Ran on', [meta.runtime, meta.backend].filter(Boolean).join(' / ') || undefined],
    ['Generation time', `${item.response.generationTime} s`],
    ['Created', new Date(item.createdAt).toLocaleString()],
    ['API id', item.response.id],
  ];
  return rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [k, String(v)]);
}

/** The card's first line: the prompt, or what an upscale (which has none) did. */
function headline(item: Item, prompt: string): string {
  if (item.endpoint === 'upscale' && !prompt) return `Upscaled ${String(item.response.meta?.scale ?? item.request.scale ?? '')}×`;
  return prompt || '(no prompt)';
}

function altText(item: Item, prompt: string): string {
  if (item.endpoint === 'upscale') return `Upscaled ${String(item.response.meta?.scale ?? '')}× (result ${item.id})`;
  return prompt ? `Generated: ${prompt}` : 'Generated image';
}

function formatDate(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}
