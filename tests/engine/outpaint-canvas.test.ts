import { describe, expect, it } from 'vitest';
import { applyOverlay, fittedSize, NothingToOutpaintError, outpaintCanvas } from '../../src/engine/outpaint-canvas.ts';

function solid(w: number, h: number, v: number) {
  return { rgba: new Uint8ClampedArray(w * h * 4).fill(v), width: w, height: h };
}

describe('outpaint canvas', () => {
  it('keeps an image that fits at its own size and scales a larger one down, aspect kept', () => {
    expect(fittedSize(300, 200, 512, 512)).toEqual({ width: 300, height: 200 });
    expect(fittedSize(1000, 500, 512, 512)).toEqual({ width: 512, height: 256 });
    expect(fittedSize(400, 800, 512, 256)).toEqual({ width: 128, height: 256 });
  });

  it('masks the new area and a band only along the edges that meet it', () => {
    // 40x64 on 64x64: new area left and right; top and bottom lie on the canvas border.
    const c = outpaintCanvas(solid(40, 64, 200), 64, 64, 4);
    expect(c.placement).toEqual({ x: 12, y: 0, width: 40, height: 64 });
    const masked = (x: number, y: number) => c.maskImage.rgba[(y * 64 + x) * 4] === 255;
    expect(masked(0, 0) && masked(11, 30) && masked(63, 63)).toBe(true); // new area
    expect(masked(12, 30) && masked(15, 30) && masked(51, 30) && masked(48, 30)).toBe(true); // bands
    expect(masked(16, 30) || masked(47, 30)).toBe(false); // past the bands
    expect(masked(30, 0) || masked(30, 63)).toBe(false); // top and bottom rows: no band on the border
    expect(c.overlay.weight[30 * 64 + 12]).toBeCloseTo(0.5 / 4);
    expect(c.overlay.weight[30 * 64 + 30]).toBe(1);
    expect(c.overlay.weight[30 * 64 + 5]).toBe(0);
    // the fill repeats the image's edge, so the canvas has no black frame
    expect(c.initImage.rgba[(30 * 64 + 0) * 4]).toBe(200);
  });

  it('with no overlap keeps every pixel of the image', () => {
    const c = outpaintCanvas(solid(32, 32, 90), 64, 48, 0);
    const inside = c.placement;
    for (let y = inside.y; y < inside.y + inside.height; y++) {
      for (let x = inside.x; x < inside.x + inside.width; x++) expect(c.overlay.weight[y * 64 + x]).toBe(1);
    }
    const rgb = new Uint8Array(64 * 48 * 3).fill(10);
    applyOverlay(rgb, c.overlay);
    expect(rgb[((inside.y + 1) * 64 + inside.x + 1) * 3]).toBe(90);
    expect(rgb[0]).toBe(10);
  });

  it('refuses an image that already fills the canvas, saying how to extend it', () => {
    expect(() => outpaintCanvas(solid(64, 64, 0), 64, 64, 8)).toThrow(NothingToOutpaintError);
    expect(() => outpaintCanvas(solid(64, 64, 0), 64, 64, 8)).toThrow(/larger width or height/);
  });
});
