/**
 * Outpainting as inpainting on a larger canvas: the image is centred on a canvas of the requested
 * size, everything around it is masked for repainting, and so is a band of `overlap` pixels along
 * each of its edges that meets new area, so the model redraws the seam instead of butting new
 * pixels against old ones. After generation the original is laid back over the result with a
 * weight that rises from 0 at its edge to 1 at the band's inner side: a feathered seam, where the
 * pixels deep inside the image come back exactly as they were.
 */
import type { RgbaImage } from './jobs.ts';

/** The original's pixels on the canvas and how much of them to keep, per pixel (0..1). */
export interface OutpaintOverlay {
  rgba: Uint8ClampedArray;
  weight: Float32Array;
}

export interface OutpaintCanvas {
  initImage: RgbaImage;
  /** White = repaint (the new area and the overlap band), black = keep. */
  maskImage: RgbaImage;
  overlay: OutpaintOverlay;
  /** Where the image sits on the canvas. */
  placement: { x: number; y: number; width: number; height: number };
}

export class NothingToOutpaintError extends Error {
  override name = 'NothingToOutpaintError';
}

/** The size the image is drawn at: its own, or scaled down (aspect kept) to fit the canvas. */
export function fittedSize(imageWidth: number, imageHeight: number, canvasWidth: number, canvasHeight: number): { width: number; height: number } {
  const scale = Math.min(1, canvasWidth / imageWidth, canvasHeight / imageHeight);
  return {
    width: Math.max(1, Math.min(canvasWidth, Math.round(imageWidth * scale))),
    height: Math.max(1, Math.min(canvasHeight, Math.round(imageHeight * scale))),
  };
}

/**
 * Builds the inpainting job's images. `image` is already at its drawn size (see fittedSize); the
 * canvas outside it repeats its edge pixels, which the masked region ignores anyway but which keeps
 * previews and 4-channel models' blending free of a black frame.
 */
export function outpaintCanvas(image: RgbaImage, canvasWidth: number, canvasHeight: number, overlap: number): OutpaintCanvas {
  const { width: w, height: h } = image;
  if (w > canvasWidth || h > canvasHeight) throw new Error(`the image (${w}x${h}) is larger than the canvas (${canvasWidth}x${canvasHeight})`);
  if (w === canvasWidth && h === canvasHeight) {
    throw new NothingToOutpaintError(
      `the image already fills ${canvasWidth}x${canvasHeight}; ask for a larger width or height than the image (${w}x${h}) to extend it`,
    );
  }
  const x0 = Math.floor((canvasWidth - w) / 2);
  const y0 = Math.floor((canvasHeight - h) / 2);
  // Only the edges that meet new area get a band: an edge on the canvas border has nothing to blend into.
  const exposed = { left: x0 > 0, right: x0 + w < canvasWidth, top: y0 > 0, bottom: y0 + h < canvasHeight };
  const n = canvasWidth * canvasHeight;
  const rgba = new Uint8ClampedArray(n * 4);
  const mask = new Uint8ClampedArray(n * 4);
  const weight = new Float32Array(n);
  const band = Math.max(0, overlap);
  for (let y = 0; y < canvasHeight; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - y0));
    for (let x = 0; x < canvasWidth; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - x0));
      const src = (sy * w + sx) * 4;
      const dst = (y * canvasWidth + x) * 4;
      rgba[dst] = image.rgba[src];
      rgba[dst + 1] = image.rgba[src + 1];
      rgba[dst + 2] = image.rgba[src + 2];
      rgba[dst + 3] = 255;
      const inside = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
      let keep = 0;
      if (inside) {
        // Distance (pixel centre) to the nearest edge that meets new area; interior edges count as far away.
        let d = Infinity;
        if (exposed.left) d = Math.min(d, x - x0 + 0.5);
        if (exposed.right) d = Math.min(d, x0 + w - x - 0.5);
        if (exposed.top) d = Math.min(d, y - y0 + 0.5);
        if (exposed.bottom) d = Math.min(d, y0 + h - y - 0.5);
        keep = band === 0 ? 1 : Math.min(1, d / band);
      }
      weight[y * canvasWidth + x] = keep;
      const repaint = keep < 1 ? 255 : 0;
      mask[dst] = repaint;
      mask[dst + 1] = repaint;
      mask[dst + 2] = repaint;
      mask[dst + 3] = 255;
    }
  }
  return {
    initImage: { rgba, width: canvasWidth, height: canvasHeight },
    maskImage: { rgba: mask, width: canvasWidth, height: canvasHeight },
    overlay: { rgba, weight },
    placement: { x: x0, y: y0, width: w, height: h },
  };
}

/** Lays the original back over a generated RGB image (in place), weighted per pixel. */
export function applyOverlay(rgb: Uint8Array, overlay: OutpaintOverlay): void {
  const n = overlay.weight.length;
  if (rgb.length !== n * 3) throw new Error(`the overlay is for ${n} pixels, the image has ${rgb.length / 3}`);
  for (let i = 0; i < n; i++) {
    const k = overlay.weight[i];
    if (k === 0) continue;
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(k * overlay.rgba[i * 4 + c] + (1 - k) * rgb[i * 3 + c]);
  }
}
