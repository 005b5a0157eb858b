/**
 * The inpaint mask editor: a canvas over the init image, painted with pointer events (mouse, pen,
 * touch). Brush and rectangle paint "repaint" (white), the eraser paints "keep" (black); undo,
 * clear and invert act on the whole mask. The API gets the mask as a PNG blob: URL at the image's
 * own size.
 */
import type { LoadedImage } from './init-image-input.ts';
import { KEEP, MaskBitmap, REPAINT } from './mask-bitmap.ts';

export type MaskTool = 'brush' | 'eraser' | 'rect';

export interface MaskEditor {
  setImage(image: LoadedImage | null): void;
  /** The mask PNG as a blob: URL, or null while there is no image to paint on. */
  maskUrl(): string | null;
  /** Paints the mask from an image (white = repaint); applied once the init image is known. */
  loadMask(url: string): Promise<void>;
  bitmap(): MaskBitmap | null;
}

/** How the repaint area shows over the image: the accent colour, half see-through. */
const OVERLAY: readonly [number, number, number, number] = [58, 109, 240, 150];
const MASK_WHITE: readonly [number, number, number, number] = [255, 255, 255, 255];

export function mountMaskEditor(root: HTMLElement, onChange?: () => void): MaskEditor {
  const $ = <T extends HTMLElement>(id: string) => root.querySelector<T>(`#${id}`)!;
  const stage = $<HTMLElement>('mask-stage');
  const base = $<HTMLImageElement>('mask-base');
  const canvas = $<HTMLCanvasElement>('mask-canvas');
  const cursor = $<HTMLElement>('mask-cursor');
  const sizeInput = $<HTMLInputElement>('mask-brush-size');
  const sizeOutput = $<HTMLOutputElement>('mask-brush-size-value');
  const undoButton = $<HTMLButtonElement>('mask-undo');
  const clearButton = $<HTMLButtonElement>('mask-clear');
  const invertButton = $<HTMLButtonElement>('mask-invert');
  const showMask = $<HTMLInputElement>('mask-show');
  const status = $<HTMLElement>('mask-status');
  const ctx = canvas.getContext('2d')!;

  let mask: MaskBitmap | null = null;
  let image: LoadedImage | null = null;
  let version = 0;
  let cached: { version: number; url: string } | null = null;
  let pendingMask: string | null = null;
  let frame = 0;

  const tool = (): MaskTool => (root.querySelector<HTMLInputElement>('input[name="mask-tool"]:checked')?.value as MaskTool) ?? 'brush';
  const radius = () => Math.max(1, Number(sizeInput.value) || 1) / 2;

  const render = () => {
    frame = 0;
    if (!mask) return;
    const pixels = mask.overlayPixels(showMask.checked ? MASK_WHITE : OVERLAY);
    ctx.putImageData(new ImageData(pixels as Uint8ClampedArray<ArrayBuffer>, mask.width, mask.height), 0, 0);
  };

  const changed = () => {
    version++;
    onChange?.();
    undoButton.disabled = !mask?.canUndo;
    if (!frame) frame = requestAnimationFrame(render);
    if (mask) {
      const share = mask.coverage();
      status.textContent = share === 0
        ? `Paint the part to repaint (${mask.width}×${mask.height} mask).`
        : `${(share * 100).toFixed(share < 0.01 ? 2 : 0)}% of the image will be repainted.`;
    }
  };

  const setControlsEnabled = (on: boolean) => {
    for (const el of [clearButton, invertButton, sizeInput, showMask]) el.disabled = !on;
    undoButton.disabled = !on || !mask?.canUndo;
  };

  const applyMaskImage = async (url: string) => {
    if (!mask) return;
    const target = mask;
    const blob = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(blob, { resizeWidth: target.width, resizeHeight: target.height, resizeQuality: 'pixelated' });
    const scratch = new OffscreenCanvas(target.width, target.height);
    const sctx = scratch.getContext('2d')!;
    sctx.drawImage(bitmap, 0, 0);
    const rgba = sctx.getImageData(0, 0, target.width, target.height).data;
    if (mask !== target) return;
    target.checkpoint();
    for (let i = 0; i < target.data.length; i++) {
      // the engine's own luma and threshold (src/engine/inpaint-mask.ts), so what shows is what runs
      const l = (rgba[i * 4] * 19595 + rgba[i * 4 + 1] * 38470 + rgba[i * 4 + 2] * 7471 + 0x8000) >> 16;
      target.data[i] = l >= 128 ? REPAINT : KEEP;
    }
    changed();
  };

  // --- painting -------------------------------------------------------------------------------
  let activePointer: number | null = null;
  let last: { x: number; y: number } | null = null;
  let rectStart: { x: number; y: number } | null = null;
  let beforeRect: Uint8Array | null = null;

  const toImage = (e: PointerEvent) => {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - box.left) * mask!.width) / box.width,
      y: ((e.clientY - box.top) * mask!.height) / box.height,
    };
  };

  const moveCursor = (e: PointerEvent) => {
    if (!mask || tool() === 'rect' || e.pointerType === 'touch') {
      cursor.hidden = true;
      return;
    }
    const box = canvas.getBoundingClientRect();
    const stageBox = stage.getBoundingClientRect();
    const d = radius() * 2 * (box.width / mask.width);
    cursor.hidden = false;
    cursor.style.width = cursor.style.height = `${d}px`;
    cursor.style.left = `${e.clientX - stageBox.left - d / 2}px`;
    cursor.style.top = `${e.clientY - stageBox.top - d / 2}px`;
  };

  const paintTo = (e: PointerEvent) => {
    if (!mask) return;
    const points = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const p of points.length ? points : [e]) {
      const at = toImage(p);
      if (tool() === 'rect') {
        if (rectStart && beforeRect) {
          mask.data.set(beforeRect);
          mask.rect(rectStart.x, rectStart.y, at.x, at.y, REPAINT);
        }
        continue;
      }
      const value = tool() === 'eraser' ? KEEP : REPAINT;
      if (last) mask.line(last.x, last.y, at.x, at.y, radius(), value);
      else mask.stamp(at.x, at.y, radius(), value);
      last = at;
    }
    changed();
  };

  canvas.addEventListener('pointerdown', (e) => {
    if (!mask || activePointer !== null || (e.pointerType === 'mouse' && e.button !== 0)) return;
    e.preventDefault();
    activePointer = e.pointerId;
    try {
      canvas.setPointerCapture(e.pointerId);
    } catch {
      // a pointer the browser does not track (a synthetic event) is painted without capture
    }
    stage.focus({ preventScroll: true });
    mask.checkpoint();
    last = null;
    if (tool() === 'rect') {
      rectStart = toImage(e);
      beforeRect = mask.data.slice();
    }
    paintTo(e);
  });
  canvas.addEventListener('pointermove', (e) => {
    moveCursor(e);
    if (e.pointerId === activePointer) paintTo(e);
  });
  const end = (e: PointerEvent) => {
    if (e.pointerId !== activePointer) return;
    if (e.type === 'pointerup') paintTo(e);
    activePointer = null;
    last = rectStart = null;
    beforeRect = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('pointerleave', () => (cursor.hidden = true));

  // --- controls -------------------------------------------------------------------------------
  const showSize = () => (sizeOutput.value = `${sizeInput.value} px`);
  sizeInput.addEventListener('input', showSize);
  showSize();
  undoButton.addEventListener('click', () => mask?.undo() && changed());
  clearButton.addEventListener('click', () => {
    mask?.clear();
    changed();
  });
  invertButton.addEventListener('click', () => {
    mask?.invert();
    changed();
  });
  showMask.addEventListener('change', () => {
    stage.classList.toggle('show-mask', showMask.checked);
    render();
  });

  stage.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z') {
      e.preventDefault();
      if (mask?.undo()) changed();
    } else if (e.key === '[' || e.key === ']') {
      e.preventDefault();
      const step = Math.max(1, Math.round(Number(sizeInput.value) / 8));
      sizeInput.value = String(Number(sizeInput.value) + (e.key === ']' ? step : -step));
      showSize();
    }
  });

  setControlsEnabled(false);

  return {
    setImage(next) {
      image = next;
      stage.hidden = !next;
      if (!next) {
        setControlsEnabled(false);
        status.textContent = 'Choose an init image above to paint its mask.';
        return;
      }
      base.src = next.url;
      // The same size keeps the mask, so that a result can be touched up again with the same mask.
      if (!mask || mask.width !== next.width || mask.height !== next.height) {
        mask = new MaskBitmap(next.width, next.height);
        canvas.width = next.width;
        canvas.height = next.height;
        stage.style.aspectRatio = `${next.width} / ${next.height}`;
        // A brush a sixteenth of the image across: the same feel on a small or a large image.
        sizeInput.value = String(Math.min(Number(sizeInput.max), Math.max(2, Math.round(Math.max(next.width, next.height) / 16))));
        showSize();
      }
      setControlsEnabled(true);
      changed();
      if (pendingMask) {
        const url = pendingMask;
        pendingMask = null;
        void applyMaskImage(url).catch(() => (status.textContent = 'The saved mask could not be loaded; paint it again.'));
      }
    },
    maskUrl() {
      if (!mask || !image) return null;
      if (cached?.version !== version) {
        // Earlier URLs stay valid: a request that carries one may still be waiting in the queue.
        const png = mask.toPng();
        cached = { version, url: URL.createObjectURL(new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' })) };
      }
      return cached.url;
    },
    async loadMask(url) {
      if (mask && image) await applyMaskImage(url);
      else pendingMask = url;
    },
    bitmap: () => mask,
  };
}
