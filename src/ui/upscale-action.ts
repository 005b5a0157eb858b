/**
 * The gallery's "Upscale" action: one of a result's images through super_resolution (2×), run by
 * the page's job runner so that its progress shows under Results like a generation's, and its
 * result joins the gallery. While it runs, that image's Upscale buttons say so and ignore clicks
 * (aria-disabled, not disabled: a keyboard user's focus stays where it was).
 */
import type { GenerationResponse } from '../api/responses.ts';

/** The gallery's factor: a quick step up (4× of a 512 px image is 2048 px, minutes without a GPU). */
export const GALLERY_SCALE = 2;
const LABEL = `Upscale ${GALLERY_SCALE}×`;
const BUSY_LABEL = 'Upscaling…';

/** One image of a gallery result. */
export interface UpscaleSource {
  id: number;
  index: number;
  /** The PNG when the gallery has its bytes; otherwise `url` is used as it is (a hosted result's link). */
  blob: Blob | null;
  url: string;
}

export interface UpscaleActionOptions {
  /** Holds every Upscale button (the cards and the large view). */
  container: HTMLElement;
  run(request: Record<string, unknown>): Promise<GenerationResponse>;
  say(text: string, isError?: boolean): void;
}

export interface UpscaleAction {
  /** A button for one image; `data-action="upscale"` is what the gallery's click handler dispatches on. */
  button(id: number, index: number): HTMLButtonElement;
  upscale(source: UpscaleSource): Promise<void>;
}

/** The hosted super_resolution request for an image (a data: URL, which the hosted API takes too). */
export function upscaleRequest(image: string, scale: number = GALLERY_SCALE): Record<string, unknown> {
  return { key: '', init_image: image, scale, face_enhance: 'no', base64: 'no', webhook: null, track_id: null };
}

export function blobToDataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error('the image could not be read'));
    reader.readAsDataURL(blob);
  });
}

function messageOf(response: GenerationResponse): string {
  if (response.status !== 'error') return '';
  const m = response.message;
  return typeof m === 'string' ? m : Object.values(m).flat().join(' ');
}

export function createUpscaleAction(options: UpscaleActionOptions): UpscaleAction {
  const pending = new Set<string>();
  const keyOf = (id: number | string | undefined, index: number | string | undefined) => `${String(id)}:${String(index ?? 0)}`;

  const show = (button: HTMLButtonElement, busy: boolean) => {
    button.textContent = busy ? BUSY_LABEL : LABEL;
    if (busy) button.setAttribute('aria-disabled', 'true');
    else button.removeAttribute('aria-disabled');
  };

  /** Every Upscale button of that image, in a card or in the large view, shows its state. */
  const reflect = () => {
    for (const b of options.container.querySelectorAll<HTMLButtonElement>('button[data-action="upscale"]')) {
      show(b, pending.has(keyOf(b.dataset.id, b.dataset.index)));
    }
  };

  return {
    button(id, index) {
      const b = document.createElement('button');
      b.type = 'button';
      Object.assign(b.dataset, { action: 'upscale', id: String(id), index: String(index) });
      b.title = `Enlarge this image ${GALLERY_SCALE} times (ESRGAN); the result is added to the gallery`;
      show(b, pending.has(keyOf(id, index)));
      return b;
    },
    async upscale(source) {
      const key = keyOf(source.id, source.index);
      if (pending.has(key)) return;
      pending.add(key);
      reflect();
      options.say(`Upscaling result ${source.id} ${GALLERY_SCALE}×; the progress shows under Results.`);
      try {
        const image = source.blob ? await blobToDataUrl(source.blob) : source.url;
        const response = await options.run(upscaleRequest(image));
        if (response.status === 'success') {
          const { W, H } = response.meta;
          options.say(`Result ${source.id} upscaled ${GALLERY_SCALE}× to ${String(W)}×${String(H)}: it is first in the gallery.`);
        } else if (response.status === 'error') {
          options.say(`Result ${source.id} could not be upscaled: ${messageOf(response)}`, true);
        }
      } catch (e) {
        options.say(`Result ${source.id} could not be upscaled: ${e instanceof Error ? e.message : String(e)}`, true);
      } finally {
        pending.delete(key);
        reflect();
      }
    },
  };
}
