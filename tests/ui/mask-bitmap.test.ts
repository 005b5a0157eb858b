import { describe, expect, it } from 'vitest';
import { decode } from 'fast-png';
import { KEEP, MaskBitmap, REPAINT } from '../../src/ui/mask-bitmap.ts';

/** The set of repainted pixels as "x,y" strings, to compare shapes exactly. */
function painted(m: MaskBitmap): Set<string> {
  const s = new Set<string>();
  for (let y = 0; y < m.height; y++) for (let x = 0; x < m.width; x++) if (m.data[y * m.width + x] === REPAINT) s.add(`${x},${y}`);
  return s;
}

function box(x0: number, y0: number, x1: number, y1: number): Set<string> {
  const s = new Set<string>();
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s.add(`${x},${y}`);
  return s;
}

describe('MaskBitmap', () => {
  it('starts all black (keep everything)', () => {
    const m = new MaskBitmap(8, 4);
    expect(m.isEmpty()).toBe(true);
    expect(m.coverage()).toBe(0);
    expect(m.data.every((v) => v === KEEP)).toBe(true);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new MaskBitmap(0, 4)).toThrow(/positive integer/);
    expect(() => new MaskBitmap(4.5, 4)).toThrow(/positive integer/);
  });

  it('a rectangle between pixel boundaries covers exactly those pixels, whichever corner comes first', () => {
    const m = new MaskBitmap(16, 12);
    m.rect(10, 9, 3, 2, REPAINT);
    expect(painted(m)).toEqual(box(3, 2, 10, 9));
    // Boundaries a hair off (pointer maths) round to the same pixels; outside the image is clipped.
    const n = new MaskBitmap(16, 12);
    n.rect(2.9999999, 2.0000001, 10.4, 8.6, REPAINT);
    expect(painted(n)).toEqual(box(3, 2, 10, 9));
    const clipped = new MaskBitmap(16, 12);
    clipped.rect(-5, -5, 4, 40, REPAINT);
    expect(painted(clipped)).toEqual(box(0, 0, 4, 12));
  });

  it('a stamp covers the pixels whose centres lie within the radius', () => {
    const m = new MaskBitmap(9, 9);
    m.stamp(4.5, 4.5, 1.5, REPAINT);
    // centre pixel, its 4 and 4 diagonal neighbours (distance sqrt(2) <= 1.5), not distance 2
    expect(painted(m)).toEqual(box(3, 3, 6, 6));
    const tiny = new MaskBitmap(4, 4);
    tiny.stamp(1.2, 2.7, 0.1, REPAINT); // a radius under half a pixel still paints the pixel under the pointer
    expect(painted(tiny)).toEqual(new Set(['1,2']));
  });

  it('a line leaves no gaps and matches the capsule around the segment', () => {
    const m = new MaskBitmap(64, 16);
    m.line(4, 8, 60, 8, 3, REPAINT);
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 64; x++) {
        const cx = x + 0.5;
        const cy = y + 0.5;
        const t = Math.max(4, Math.min(60, cx));
        const d = Math.hypot(cx - t, cy - 8);
        // inside by a margin: painted; outside by a margin: not (stamp spacing only shaves the rim)
        if (d < 2.6) expect(m.data[y * 64 + x], `${x},${y}`).toBe(REPAINT);
        if (d > 3) expect(m.data[y * 64 + x], `${x},${y}`).toBe(KEEP);
      }
    }
  });

  it('the eraser paints keep over repaint', () => {
    const m = new MaskBitmap(10, 10);
    m.rect(0, 0, 10, 10, REPAINT);
    m.rect(2, 2, 4, 4, KEEP);
    expect(painted(m).size).toBe(100 - 4);
  });

  it('invert, clear and undo, step by step', () => {
    const m = new MaskBitmap(6, 6);
    m.checkpoint();
    m.rect(1, 1, 3, 3, REPAINT);
    const stroke = painted(m);
    m.invert();
    expect(painted(m).size).toBe(36 - 4);
    expect([...stroke].some((p) => painted(m).has(p))).toBe(false);
    m.clear();
    expect(m.isEmpty()).toBe(true);
    expect(m.undo()).toBe(true); // undo clear
    expect(painted(m).size).toBe(32);
    expect(m.undo()).toBe(true); // undo invert
    expect(painted(m)).toEqual(stroke);
    expect(m.undo()).toBe(true); // undo the stroke
    expect(m.isEmpty()).toBe(true);
    expect(m.undo()).toBe(false);
    expect(m.canUndo).toBe(false);
  });

  it('exports an opaque greyscale PNG at its own size: 255 where repainted, 0 elsewhere', () => {
    const m = new MaskBitmap(20, 14);
    m.rect(5, 3, 12, 9, REPAINT);
    const png = decode(m.toPng());
    expect([png.width, png.height, png.channels, png.depth]).toEqual([20, 14, 1, 8]);
    const data = png.data as Uint8Array;
    for (let y = 0; y < 14; y++) {
      for (let x = 0; x < 20; x++) {
        const inside = x >= 5 && x < 12 && y >= 3 && y < 9;
        expect(data[y * 20 + x], `${x},${y}`).toBe(inside ? 255 : 0);
      }
    }
    expect(m.coverage()).toBeCloseTo((7 * 6) / (20 * 14), 12);
  });

  it('overlay pixels tint the repainted part and leave the rest transparent', () => {
    const m = new MaskBitmap(2, 1);
    m.stamp(0.5, 0.5, 0.5, REPAINT);
    expect(Array.from(m.overlayPixels([1, 2, 3, 4]))).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
  });
});
