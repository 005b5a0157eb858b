/**
 * The inpaint mask as a plain bitmap, one byte a pixel (255 = repaint, 0 = keep), at the init
 * image's size. Painting is done here rather than with canvas strokes so that no anti-aliased grey
 * edge ever reaches the engine, which binarises at 128: what the user sees is exactly what runs.
 * DOM-free, so that it is unit-tested without a browser.
 */
import { encode } from 'fast-png';

export const REPAINT = 255;
export const KEEP = 0;

/** How many edits undo remembers; a 1024x1024 mask is 1 MiB a snapshot. */
const UNDO_DEPTH = 30;

export class MaskBitmap {
  readonly data: Uint8Array;
  private readonly undoStack: Uint8Array[] = [];

  constructor(readonly width: number, readonly height: number) {
    if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height))) {
      throw new Error(`a mask needs a positive integer size, got ${width}x${height}`);
    }
    this.data = new Uint8Array(width * height);
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  /** Remembers the current mask so that the next edit (a whole stroke, a clear...) undoes as one. */
  checkpoint(): void {
    this.undoStack.push(this.data.slice());
    if (this.undoStack.length > UNDO_DEPTH) this.undoStack.shift();
  }

  undo(): boolean {
    const previous = this.undoStack.pop();
    if (!previous) return false;
    this.data.set(previous);
    return true;
  }

  clear(): void {
    this.checkpoint();
    this.data.fill(KEEP);
  }

  invert(): void {
    this.checkpoint();
    for (let i = 0; i < this.data.length; i++) this.data[i] = REPAINT - this.data[i];
  }

  /** A disc: every pixel whose centre lies within `radius` of (cx, cy), in image pixels. */
  stamp(cx: number, cy: number, radius: number, value: number): void {
    const r = Math.max(0.5, radius);
    const y0 = Math.max(0, Math.floor(cy - r));
    const y1 = Math.min(this.height - 1, Math.ceil(cy + r));
    const x0 = Math.max(0, Math.floor(cx - r));
    const x1 = Math.min(this.width - 1, Math.ceil(cx + r));
    const r2 = r * r;
    for (let y = y0; y <= y1; y++) {
      const dy = y + 0.5 - cy;
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - cx;
        if (dx * dx + dy * dy <= r2) this.data[y * this.width + x] = value;
      }
    }
  }

  /** A stroke segment: discs close enough together that a fast pointer leaves no gaps. */
  line(x0: number, y0: number, x1: number, y1: number, radius: number, value: number): void {
    const length = Math.hypot(x1 - x0, y1 - y0);
    const spacing = Math.max(0.25, Math.max(0.5, radius) / 4);
    const n = Math.max(1, Math.ceil(length / spacing));
    for (let i = 0; i <= n; i++) this.stamp(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, radius, value);
  }

  /**
   * The box between two corners given in image coordinates: the pixel columns from round(min x)
   * up to round(max x), exclusive, and likewise for rows. Dragging from one pixel boundary to
   * another covers exactly the pixels between them.
   */
  rect(ax: number, ay: number, bx: number, by: number, value: number): void {
    const clampX = (v: number) => Math.min(this.width, Math.max(0, Math.round(v)));
    const clampY = (v: number) => Math.min(this.height, Math.max(0, Math.round(v)));
    const x0 = clampX(Math.min(ax, bx));
    const x1 = clampX(Math.max(ax, bx));
    const y0 = clampY(Math.min(ay, by));
    const y1 = clampY(Math.max(ay, by));
    for (let y = y0; y < y1; y++) this.data.fill(value, y * this.width + x0, y * this.width + x1);
  }

  isEmpty(): boolean {
    return !this.data.some((v) => v !== KEEP);
  }

  /** How much of the image will be repainted, 0..1. */
  coverage(): number {
    let n = 0;
    for (const v of this.data) if (v !== KEEP) n++;
    return n / this.data.length;
  }

  /** The mask as the API takes it: an opaque greyscale PNG, white = repaint, black = keep. */
  toPng(): Uint8Array {
    return encode({ width: this.width, height: this.height, data: this.data, channels: 1, depth: 8 });
  }

  /** RGBA pixels for drawing the mask as a tinted overlay over the image: `rgba` where repainted, clear elsewhere. */
  overlayPixels(rgba: readonly [number, number, number, number], out?: Uint8ClampedArray): Uint8ClampedArray {
    const pixels = out ?? new Uint8ClampedArray(this.data.length * 4);
    for (let i = 0; i < this.data.length; i++) {
      const on = this.data[i] !== KEEP;
      pixels[i * 4] = on ? rgba[0] : 0;
      pixels[i * 4 + 1] = on ? rgba[1] : 0;
      pixels[i * 4 + 2] = on ? rgba[2] : 0;
      pixels[i * 4 + 3] = on ? rgba[3] : 0;
    }
    return pixels;
  }
}
