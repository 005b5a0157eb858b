/**
 * The app's icons, drawn by code and encoded with fast-png, so no binary image lives in the repository
 * and every size is rendered sharp rather than scaled down from one master.
 *
 * The motif is a small framed landscape (sun and two mountains) whose top-left corner dissolves into
 * coarse noise: an image being denoised. The vite config emits these at build time and serves them in dev;
 *
 *   npx tsx tools/icons.ts [outDir]     writes them to outDir (default test-results/icons) to look at.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode } from 'fast-png';

export interface IconSpec {
  /** Path under the site root, without a leading slash. */
  file: string;
  size: number;
  /**
   * `maskable`: full-bleed background with the motif inside the central safe circle (radius 40 %),
   * because launchers crop it to their own shape. `any`: a rounded square with transparent corners.
   */
  purpose: 'any' | 'maskable';
}

export const ICONS: readonly IconSpec[] = [
  { file: 'icons/icon-192.png', size: 192, purpose: 'any' },
  { file: 'icons/icon-512.png', size: 512, purpose: 'any' },
  { file: 'icons/maskable-192.png', size: 192, purpose: 'maskable' },
  { file: 'icons/maskable-512.png', size: 512, purpose: 'maskable' },
  // iOS ignores manifest icons and rounds the corners itself, so it gets an opaque one.
  { file: 'icons/apple-touch-icon.png', size: 180, purpose: 'maskable' },
];

/** The manifest's theme colour; the top of the icon's gradient, so the title bar and icon agree. */
export const THEME_COLOR = '#3a6df0';
export const BACKGROUND_COLOR = '#14161a';

type Rgba = [number, number, number, number];

const TOP: Rgba = [0x3a, 0x6d, 0xf0, 255];
const BOTTOM: Rgba = [0x6a, 0x3f, 0xd0, 255];
const FRAME: Rgba = [0x14, 0x16, 0x1a, 255];
const SUN: Rgba = [0xff, 0xd1, 0x66, 255];
const FAR_MOUNTAIN: Rgba = [0xb8, 0xc6, 0xff, 255];
const NEAR_MOUNTAIN: Rgba = [0xff, 0xff, 0xff, 255];

/** Subsamples per axis: 4x4 per pixel is enough for smooth edges at 180-512 px. */
const SUPERSAMPLE = 4;
/** The frame (the "photo") spans this box of the motif's unit square. */
const FRAME_MIN = 0.2;
const FRAME_MAX = 0.8;
const NOISE_CELLS = 12;

function mix(a: Rgba, b: Rgba, t: number): Rgba {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t, a[3] + (b[3] - a[3]) * t];
}

/** Inside a rounded rectangle [x0,x1]x[y0,y1] with corner radius r. */
function inRoundedRect(x: number, y: number, x0: number, y0: number, x1: number, y1: number, r: number): boolean {
  const dx = Math.max(x0 + r - x, 0, x - (x1 - r));
  const dy = Math.max(y0 + r - y, 0, y - (y1 - r));
  return dx * dx + dy * dy <= r * r;
}

/** Inside the triangle with a flat base at `baseY` from `left` to `right` and its peak at (peakX, peakY). */
function inMountain(x: number, y: number, left: number, right: number, baseY: number, peakX: number, peakY: number): boolean {
  if (y > baseY || y < peakY) return false;
  const t = (y - peakY) / (baseY - peakY);
  return x >= peakX + (left - peakX) * t && x <= peakX + (right - peakX) * t;
}

/** A fixed pseudo-random value in [0, 1) per noise cell (integer hash; same output on every machine). */
function cellNoise(cx: number, cy: number, channel: number): number {
  let h = Math.imul(cx + 1, 0x27d4eb2d) ^ Math.imul(cy + 7, 0x165667b1) ^ Math.imul(channel + 13, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/** The motif's colour at (u, v) in its unit square, or null outside the frame. */
function motif(u: number, v: number): Rgba | null {
  if (!inRoundedRect(u, v, FRAME_MIN, FRAME_MIN, FRAME_MAX, FRAME_MAX, 0.06)) return null;
  let c: Rgba = FRAME;
  const sx = u - 0.62;
  const sy = v - 0.38;
  if (sx * sx + sy * sy <= 0.1 * 0.1) c = SUN;
  if (inMountain(u, v, 0.14, 0.66, FRAME_MAX, 0.4, 0.47)) c = FAR_MOUNTAIN;
  if (inMountain(u, v, 0.38, 0.96, FRAME_MAX, 0.64, 0.53)) c = NEAR_MOUNTAIN;
  // Noise strongest in the top-left corner, gone past the middle: the picture emerging from noise.
  const diagonal = (u - FRAME_MIN + v - FRAME_MIN) / (2 * (FRAME_MAX - FRAME_MIN));
  const w = Math.min(1, Math.max(0, 1 - diagonal / 0.6)) ** 1.3;
  if (w > 0) {
    const cx = Math.floor(((u - FRAME_MIN) / (FRAME_MAX - FRAME_MIN)) * NOISE_CELLS);
    const cy = Math.floor(((v - FRAME_MIN) / (FRAME_MAX - FRAME_MIN)) * NOISE_CELLS);
    const grey = 40 + 215 * cellNoise(cx, cy, 0);
    const tint = 30 * (cellNoise(cx, cy, 1) - 0.5);
    c = mix(c, [grey + tint, grey, grey - tint, 255], w);
  }
  return c;
}

/** Colour of one sample at (x, y) in the icon's unit square. */
function sample(x: number, y: number, purpose: IconSpec['purpose']): Rgba {
  const background = mix(TOP, BOTTOM, (x + y) / 2);
  const inside = purpose === 'maskable' || inRoundedRect(x, y, 0, 0, 1, 1, 0.2);
  if (!inside) return [0, 0, 0, 0];
  // Maskable: the frame's rounded corners reach 0.24 * sqrt 2 + 0.06 = 0.399 from the centre; a 5 % shrink keeps
  // them clear of the 0.4 safe circle's edge.
  const scale = purpose === 'maskable' ? 0.95 : 1;
  return motif(0.5 + (x - 0.5) / scale, 0.5 + (y - 0.5) / scale) ?? background;
}

/** RGBA pixels of one icon, each pixel the mean of SUPERSAMPLE^2 samples (alpha-weighted colour). */
export function renderIconPixels(size: number, purpose: IconSpec['purpose']): Uint8Array {
  const data = new Uint8Array(size * size * 4);
  const n = SUPERSAMPLE * SUPERSAMPLE;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < SUPERSAMPLE; sy++) {
        for (let sx = 0; sx < SUPERSAMPLE; sx++) {
          const c = sample((px + (sx + 0.5) / SUPERSAMPLE) / size, (py + (sy + 0.5) / SUPERSAMPLE) / size, purpose);
          r += c[0] * c[3];
          g += c[1] * c[3];
          b += c[2] * c[3];
          a += c[3];
        }
      }
      const o = (py * size + px) * 4;
      if (a > 0) {
        data[o] = Math.round(r / a);
        data[o + 1] = Math.round(g / a);
        data[o + 2] = Math.round(b / a);
      }
      data[o + 3] = Math.round(a / n);
    }
  }
  return data;
}

export function renderIcon(spec: IconSpec): Uint8Array {
  return encode({ width: spec.size, height: spec.size, data: renderIconPixels(spec.size, spec.purpose), channels: 4, depth: 8 });
}

/** The manifest's `icons` entries for ICONS (the apple-touch-icon is linked from index.html instead). */
export function manifestIcons(base = '/'): { src: string; sizes: string; type: string; purpose: string }[] {
  return ICONS.filter((i) => !i.file.includes('apple-touch-icon')).map((i) => ({
    src: `${base}${i.file}`,
    sizes: `${i.size}x${i.size}`,
    type: 'image/png',
    purpose: i.purpose,
  }));
}

async function main(): Promise<void> {
  const outDir = path.resolve(process.argv[2] ?? 'test-results/icons');
  for (const spec of ICONS) {
    const file = path.join(outDir, spec.file);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, renderIcon(spec));
    console.log(`${file} (${spec.size}x${spec.size}, ${spec.purpose})`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
