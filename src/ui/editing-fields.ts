/**
 * The form's image-editing modes: Outpaint (the image centred on a larger canvas, the rest
 * generated) and Upscale (ESRGAN, no prompt). Their tabs and fields are added to the page's form
 * here, beside the generation modes' markup in index.html, and the shared fields are told which
 * modes show them (`data-modes`, read by the form's setMode).
 */
import type { Mode } from './contracts.ts';
import type { LoadedImage } from './init-image-input.ts';

/** The factors the local upscaler has graphs for (the hosted call takes the same). */
export const SCALES = [2, 3, 4] as const;
/** The form's default: 4 (the hosted default) turns a 512 px image into 2048 px, minutes of WASM. */
const DEFAULT_SCALE = 2;
const DEFAULT_OVERLAP = 32;

const GENERATING: readonly Mode[] = ['text2img', 'img2img', 'inpaint', 'outpaint'];
/** Fields of the generation calls that the hosted outpaint call does not take. */
const NOT_OUTPAINT: readonly Mode[] = ['text2img', 'img2img', 'inpaint'];

export interface EditingFields {
  /** The mode changed (after the form has shown and hidden fields): legends and hints follow. */
  modeChanged(mode: Mode): void;
  /** The form's image loaded (or went: null): the upscale's result size follows. */
  imageChanged(image: LoadedImage | null): void;
  overlapWidth(): string | null;
  scale(): number;
  /** Fills the fields from an earlier request of that mode (missing fields keep their defaults). */
  load(mode: Mode, request: Record<string, unknown>): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const modesAttr = (modes: readonly Mode[]) => modes.join(' ');

/** Adds the tabs and fields to the form; call before the form reads its tabs. */
export function addEditingFields(form: HTMLFormElement): EditingFields {
  const $ = <T extends HTMLElement>(selector: string) => form.querySelector<T>(selector)!;
  const tablist = $<HTMLElement>('[role="tablist"]');
  for (const [mode, label, title] of [
    ['outpaint', 'Outpaint', 'Extend an image: it is centred on a larger canvas and the rest is generated'],
    ['upscale', 'Upscale', 'Enlarge an image 2, 3 or 4 times (ESRGAN), no prompt'],
  ] as const) {
    tablist.append(el('button', {
      id: `mode-${mode}`, type: 'button', role: 'tab', 'data-mode': mode, 'aria-controls': 'form-fields',
      'aria-selected': 'false', tabindex: '-1', title,
    }, label));
  }

  // Which shared fields each mode shows. Outer elements come before inner ones in the document, so the
  // form's setMode enables a group first and then disables the inner fields another mode lacks.
  const init = $<HTMLFieldSetElement>('#init-fieldset');
  init.dataset.modes = `${init.dataset.modes ?? 'img2img inpaint'} outpaint upscale`;
  const legend = init.querySelector('legend')!;
  const generationOnly = [
    $('#prompt').closest('label'), $('#negative_prompt').closest('label'), $('.size-row'),
    $('#num_inference_steps').closest('.grid'), $('#advanced'),
  ];
  for (const node of generationOnly) if (node instanceof HTMLElement) node.dataset.modes = modesAttr(GENERATING);
  for (const id of ['#samples', '#enhance_prompt', '#safety_checker']) {
    const label = $(id).closest('label');
    if (label) label.dataset.modes = modesAttr(NOT_OUTPAINT);
  }

  // Outpaint: the size row is the new canvas; the overlap sits where img2img's strength does.
  const sizeHint = el('p', { class: 'hint', id: 'outpaint-hint', 'data-modes': 'outpaint' },
    'Width and height are the new canvas: the image is centred on it and the rest is generated.');
  $('.size-row').after(sizeHint);
  const overlap = el('input', {
    id: 'overlap_width', name: 'overlap_width', type: 'number', min: '0', max: '256', step: '1', value: String(DEFAULT_OVERLAP),
    'aria-describedby': 'overlap-hint',
  });
  const overlapLabel = el('label', { 'data-modes': 'outpaint' }, 'Overlap (px) ', overlap);
  $('#strength').closest('label')!.after(overlapLabel);
  const overlapHint = el('p', { class: 'hint', id: 'overlap-hint', 'data-modes': 'outpaint' },
    'Overlap: pixels along the image\'s edge that are redrawn to hide the seam.');
  $('#num_inference_steps').closest('.grid')!.after(overlapHint);

  // Upscale: the factor, and what it makes of the image given.
  const scale = el('select', { id: 'scale', name: 'scale', 'aria-describedby': 'scale-result' });
  for (const f of SCALES) scale.add(new Option(`${f}×`, String(f), f === DEFAULT_SCALE, f === DEFAULT_SCALE));
  const result = el('output', { id: 'scale-result', for: 'scale', class: 'hint' });
  const scaleRow = el('div', { class: 'scale-row', 'data-modes': 'upscale' },
    el('label', {}, 'Scale ', scale),
    result,
  );
  const scaleHint = el('p', { class: 'hint', 'data-modes': 'upscale' }, 'ESRGAN enlarges the image on this device; no prompt is needed.');
  init.after(scaleRow, scaleHint);

  let image: LoadedImage | null = null;
  const showResultSize = () => {
    const f = Number(scale.value);
    result.textContent = image ? `${image.width}×${image.height} → ${image.width * f}×${image.height * f}` : `Each side ${f} times as long`;
  };
  scale.addEventListener('change', showResultSize);
  showResultSize();

  return {
    modeChanged(mode) {
      legend.textContent = mode === 'outpaint' ? 'Image to extend' : mode === 'upscale' ? 'Image to upscale' : 'Init image';
    },
    imageChanged(next) {
      image = next;
      showResultSize();
    },
    overlapWidth: () => overlap.value.trim() || null,
    scale: () => Number(scale.value),
    load(mode, request) {
      const o = request.overlap_width;
      if (typeof o === 'number' || (typeof o === 'string' && o.trim() !== '')) overlap.value = String(o).trim();
      else if (mode === 'outpaint') overlap.value = String(DEFAULT_OVERLAP);
      if (mode !== 'upscale') return;
      const f = Number(request.scale);
      // A request without a scale got the hosted default, 4.
      scale.value = String((SCALES as readonly number[]).includes(f) ? f : 4);
      showResultSize();
    },
  };
}
