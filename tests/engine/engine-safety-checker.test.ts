/**
 * The safety checker's input: CLIPImageProcessor's preprocessing (Pillow's 8-bit bicubic resize of
 * the shortest side, center crop, rescale, normalise) against numbers printed by Pillow 9.4 + numpy
 * (transformers' steps re-done in numpy; transformers itself is not installed here).
 */
import { describe, expect, it } from 'vitest';
import { clipPreprocess, readClipPreprocessConfig, resizeRgbBicubic, shortestEdgeSize, tensorToUnitHwc } from '../../src/engine/safety-checker.ts';
import { featureExtractorConfig } from '../../tools/tiny-models/safety-checker.ts';

/** A deterministic RGB pattern with edges and gradients (the same formula as the Python reference). */
function pattern(w: number, h: number): Uint8Array {
  const a = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    a[i] = (x * 37 + y * 11) % 256;
    a[i + 1] = (x * x + 3 * y) % 256;
    a[i + 2] = ((x ^ y) * 7) % 256;
  }
  return a;
}

/** sum of bytes, and sum of (byte * index) mod 1000003: enough to tell any single-pixel difference. */
function checksums(a: Uint8Array): [number, number] {
  let s = 0;
  let c = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i];
    c = (c + ((a[i] * i) % 1000003)) % 1000003;
  }
  return [s, c];
}

describe('CLIP preprocessing for the safety checker', () => {
  it('resizes exactly as Pillow 9.4 Image.resize(BICUBIC) does, up and down', () => {
    // (w, h) -> (out w, out h): [sum, weighted checksum] printed by Pillow 9.4
    const cases: [number, number, number, number, number, number][] = [
      [40, 24, 373, 224, 29062721, 69800],
      [512, 512, 224, 224, 19189012, 572784],
      [64, 96, 224, 336, 27863621, 732784],
      [300, 200, 35, 17, 226552, 516673],
    ];
    for (const [w, h, ow, oh, sum, weighted] of cases) {
      expect(checksums(resizeRgbBicubic(pattern(w, h), w, h, ow, oh))).toEqual([sum, weighted]);
    }
  });

  it('sizes the shortest side as transformers does (long side truncated) and leaves a matching size alone', () => {
    expect(shortestEdgeSize(40, 24, 224)).toEqual({ width: 373, height: 224 });
    expect(shortestEdgeSize(512, 768, 224)).toEqual({ width: 224, height: 336 });
    expect(shortestEdgeSize(224, 300, 224)).toEqual({ width: 224, height: 300 });
  });

  it('matches the numpy reference: resize, center crop ((W - 224) // 2), rescale, normalise', () => {
    const cfg = readClipPreprocessConfig(featureExtractorConfig());
    const out = clipPreprocess(pattern(40, 24), 40, 24, cfg);
    expect([out.width, out.height]).toEqual([224, 224]);
    const plane = 224 * 224;
    // numpy float32: x[0,0,0], x[1,100,50], x[2,223,223], mean
    expect(out.data[0]).toBe(Math.fround(-1.7338688));
    expect(out.data[plane + 100 * 224 + 50]).toBe(Math.fround(1.1894255));
    expect(out.data[2 * plane + 223 * 224 + 223]).toBe(Math.fround(-0.2857342));
    expect(out.data.reduce((a, b) => a + b, 0)).toBeCloseTo(24899.07682806556, 6);
  });

  it('reads older configs with bare numbers, and refuses resampling it does not implement', () => {
    const cfg = readClipPreprocessConfig({ size: 224, crop_size: 224, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] });
    expect(cfg).toMatchObject({ shortestEdge: 224, cropWidth: 224, cropHeight: 224, doRescale: true, doNormalize: true, mean: [0.5, 0.5, 0.5] });
    expect(() => readClipPreprocessConfig({ resample: 2 })).toThrow(/bicubic/);
  });

  it('puts a near-white image above the tiny checker\'s threshold (mean > 1.5) and a mid-grey one below', () => {
    const cfg = readClipPreprocessConfig(featureExtractorConfig());
    const mean = (v: number) => {
      const { data } = clipPreprocess(new Uint8Array(64 * 64 * 3).fill(v), 64, 64, cfg);
      return data.reduce((a, b) => a + b, 0) / data.length;
    };
    expect(mean(250)).toBeGreaterThan(1.5);
    expect(mean(128)).toBeLessThan(1.5);
  });

  it('gives the checker\'s images input as clip(x / 2 + 0.5, 0, 1) in HWC order', () => {
    const t = Float32Array.from([-1, 0, 1, 3, -0.5, 0.5, 0, 0, 0, 0, 0, 0]); // [3, 2, 2]
    expect(Array.from(tensorToUnitHwc(t, 2, 2))).toEqual([0, 0.25, 0.5, 0.5, 0.75, 0.5, 1, 0.5, 0.5, 1, 0.5, 0.5]);
  });
});
