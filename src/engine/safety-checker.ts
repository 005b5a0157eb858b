/**
 * The model's safety checker, run as diffusers' OnnxStableDiffusionPipeline runs it: one image at
 * a time, `images` = the decoded image in [0, 1] as [1, H, W, 3], `clip_input` = that image as
 * 8-bit pixels through CLIPImageProcessor (settings from feature_extractor/preprocessor_config.json:
 * resize the shortest side with PIL's bicubic, center crop, rescale, normalise).
 */
import type { ModelSession } from './runtime.ts';

export const SAFETY_CHECKER_FILES = {
  graph: 'safety_checker/model.onnx',
  preprocessor: 'feature_extractor/preprocessor_config.json',
} as const;

/** CLIPImageProcessor's settings, as transformers reads them from preprocessor_config.json. */
export interface ClipPreprocessConfig {
  doResize: boolean;
  shortestEdge: number;
  doCenterCrop: boolean;
  cropHeight: number;
  cropWidth: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

/** CLIPImageProcessor's defaults (OpenAI CLIP's), for keys a config omits. */
const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

function triple(v: unknown, fallback: [number, number, number]): [number, number, number] {
  if (typeof v === 'number') return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v as [number, number, number];
  return fallback;
}

function side(v: unknown, key: 'shortest_edge' | 'height' | 'width', fallback: number): number {
  // older configs give a bare number, newer ones a dict
  if (typeof v === 'number') return v;
  const d = v as Record<string, unknown> | null | undefined;
  return typeof d?.[key] === 'number' ? (d[key] as number) : fallback;
}

export function readClipPreprocessConfig(json: Record<string, unknown>): ClipPreprocessConfig {
  const flag = (key: string, fallback: boolean) => (typeof json[key] === 'boolean' ? (json[key] as boolean) : fallback);
  if (typeof json.resample === 'number' && json.resample !== 3) {
    throw new Error(`feature_extractor: only bicubic resampling (3) is supported, the config asks for ${json.resample}`);
  }
  return {
    doResize: flag('do_resize', true),
    shortestEdge: side(json.size, 'shortest_edge', 224),
    doCenterCrop: flag('do_center_crop', true),
    cropHeight: side(json.crop_size, 'height', 224),
    cropWidth: side(json.crop_size, 'width', 224),
    doRescale: flag('do_rescale', true),
    rescaleFactor: typeof json.rescale_factor === 'number' ? json.rescale_factor : 1 / 255,
    doNormalize: flag('do_normalize', true),
    mean: triple(json.image_mean, CLIP_MEAN),
    std: triple(json.image_std, CLIP_STD),
  };
}

/** Pillow's bicubic kernel (a = -0.5), support 2. */
function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Pillow keeps 8-bit resampling weights in fixed point with this many fractional bits. */
const PRECISION_BITS = 32 - 8 - 2;

interface Taps {
  start: Int32Array;
  count: Int32Array;
  size: number;
  weights: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * size);
  const w = new Float64Array(size);
  const inverseScale = 1 / filterScale;
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5)) - lo;
    let total = 0;
    for (let k = 0; k < hi; k++) {
      w[k] = bicubic((k + lo - center + 0.5) * inverseScale);
      total += w[k];
    }
    for (let k = 0; k < hi; k++) {
      const v = total !== 0 ? w[k] / total : w[k];
      weights[o * size + k] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    start[o] = lo;
    count[o] = hi;
  }
  return { start, count, size, weights };
}

function clip8(acc: number): number {
  if (acc <= 0) return 0;
  const v = Math.floor(acc / (1 << PRECISION_BITS));
  return v > 255 ? 255 : v;
}

/** Pillow's Image.resize(BICUBIC) of 8-bit RGB: a horizontal pass, then a vertical one, each only where the size changes. */
export function resizeRgbBicubic(rgb: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  let src = rgb;
  let w = width;
  if (outW !== width) {
    const t = taps(width, outW);
    const dst = new Uint8Array(outW * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < outW; x++) {
        for (let c = 0; c < 3; c++) {
          let acc = 1 << (PRECISION_BITS - 1);
          for (let k = 0; k < t.count[x]; k++) acc += src[(y * w + t.start[x] + k) * 3 + c] * t.weights[x * t.size + k];
          dst[(y * outW + x) * 3 + c] = clip8(acc);
        }
      }
    }
    src = dst;
    w = outW;
  }
  if (outH === height) return src === rgb ? rgb.slice() : src;
  const t = taps(height, outH);
  const dst = new Uint8Array(w * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 1 << (PRECISION_BITS - 1);
        for (let k = 0; k < t.count[y]; k++) acc += src[((t.start[y] + k) * w + x) * 3 + c] * t.weights[y * t.size + k];
        dst[(y * w + x) * 3 + c] = clip8(acc);
      }
    }
  }
  return dst;
}

/** transformers' get_resize_output_image_size(default_to_square=False): the short side to `edge`, the long side scaled and truncated. */
export function shortestEdgeSize(width: number, height: number, edge: number): { width: number; height: number } {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  if (short === edge) return { width, height };
  const newLong = Math.trunc((edge * long) / short);
  return width <= height ? { width: edge, height: newLong } : { width: newLong, height: edge };
}

/** CLIPImageProcessor on 8-bit RGB (W*H*3) -> pixel_values [3, cropH, cropW] float32. */
export function clipPreprocess(rgb: Uint8Array, width: number, height: number, cfg: ClipPreprocessConfig): { data: Float32Array; width: number; height: number } {
  let pixels = rgb;
  let w = width;
  let h = height;
  if (cfg.doResize) {
    const size = shortestEdgeSize(w, h, cfg.shortestEdge);
    if (size.width !== w || size.height !== h) pixels = resizeRgbBicubic(pixels, w, h, size.width, size.height);
    w = size.width;
    h = size.height;
  }
  let top = 0;
  let left = 0;
  let outW = w;
  let outH = h;
  if (cfg.doCenterCrop) {
    if (cfg.cropWidth > w || cfg.cropHeight > h) {
      // transformers pads with zeros here; a shortest-edge resize to at least the crop never needs it
      throw new Error(`feature_extractor: a ${w}x${h} image cannot be center-cropped to ${cfg.cropWidth}x${cfg.cropHeight}`);
    }
    top = Math.floor((h - cfg.cropHeight) / 2);
    left = Math.floor((w - cfg.cropWidth) / 2);
    outW = cfg.cropWidth;
    outH = cfg.cropHeight;
  }
  const plane = outW * outH;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(cfg.mean[c]);
    const std = Math.fround(cfg.std[c]);
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        // rescale in float64 then float32, normalise in float32, as transformers' numpy code does
        let v = pixels[((y + top) * w + x + left) * 3 + c];
        if (cfg.doRescale) v = Math.fround(v * cfg.rescaleFactor);
        if (cfg.doNormalize) v = Math.fround(Math.fround(v - mean) / std);
        out[c * plane + y * outW + x] = v;
      }
    }
  }
  return { data: out, width: outW, height: outH };
}

/** A decoded image tensor [1, 3, H, W] in [-1, 1] -> np.clip(x / 2 + 0.5, 0, 1) as [H, W, 3]. */
export function tensorToUnitHwc(t: Float32Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[i * 3 + c] = Math.min(1, Math.max(0, Math.fround(t[c * plane + i] / 2) + 0.5));
  }
  return out;
}

export class SafetyChecker {
  constructor(
    private readonly session: ModelSession,
    private readonly preprocess: ClipPreprocessConfig,
  ) {
    for (const name of ['clip_input', 'images']) session.input(name);
    if (!session.outputs.some((o) => o.name === 'has_nsfw_concepts')) {
      throw new Error(`safety_checker: the model has no has_nsfw_concepts output (it has ${session.outputs.map((o) => o.name).join(', ')})`);
    }
  }

  /**
   * Whether the checker flags one image. `decoded` is the VAE's [1, 3, H, W] output, `rgb` the
   * 8-bit pixels made from it (what numpy_to_pil gives the feature extractor).
   */
  async isFlagged(decoded: Float32Array, rgb: Uint8Array, width: number, height: number): Promise<boolean> {
    const clip = clipPreprocess(rgb, width, height, this.preprocess);
    const out = await this.session.run({
      clip_input: { data: clip.data, dims: [1, 3, clip.height, clip.width] },
      images: { data: tensorToUnitHwc(decoded, width, height), dims: [1, height, width, 3] },
    });
    return out.has_nsfw_concepts.data[0] !== 0;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
