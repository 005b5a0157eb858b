/**
 * Super resolution: a trained upscaling network (ESRGAN-slim, converted by tools/esrgan.ts:
 * `image` RGB [1, 3, H, W] in [0, 1] -> `upscaled` RGB [1, 3, sH, sW] in [0, 1]) run over an image
 * in overlapping tiles, plus the bicubic baseline it is judged against and the PSNR that judges.
 *
 * Tiles keep every tensor small whatever the image size (a 2048 px result is made of 512 px
 * pieces), give progress per tile, and let a cancel land between tiles. Output rows are finished
 * one tile row at a time, so besides the result only one tile row's float accumulator is held.
 * Alpha is not something the network was trained on: it is upscaled bicubically.
 */
import { axisTiles, type AxisTiles, type TileOptions } from './image-tiles.ts';
import { JobCancelled } from './pipelines/denoising-loop.ts';
import { createModelSession, type ModelSession, type SessionFactoryOptions } from './runtime.ts';

export interface RasterImage {
  /** Interleaved RGBA or RGB bytes, row by row (the channel count follows from the length). */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export interface UpscaledImage {
  /** RGBA bytes, row by row. */
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

export interface UpscaleOptions extends TileOptions {
  /** Called after every tile with the tiles done so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Checked before every tile; an aborted signal ends the upscale with JobCancelled. */
  signal?: AbortSignal;
  /** Checked before every tile, as the denoising loop's hook is; true ends the upscale with JobCancelled. */
  shouldStop?: () => boolean;
}

/**
 * How far, in input pixels, a cut edge reaches into ESRGAN-slim's output: its 3×3 and 5×5
 * convolutions add up to a radius of 9 input pixels, plus a fraction of one for the last conv at
 * the upscaled size. Measured on the example photo: a cut changes the output up to 9 pixels from
 * it (by up to 0.19/255 at 8, 0.016/255 at 9) and not at all from 10 on.
 */
export const ESRGAN_SLIM_RECEPTIVE_RADIUS = 10;

/**
 * The largest input side the app hands the upscaler: at ×4 that is a 4096 px square, 64 MB of RGBA
 * plus a 25 MB tile-row accumulator, about what a worker can hold next to the encoded PNG.
 */
export const MAX_UPSCALE_INPUT = 1024;

/**
 * 128 px tiles (a 512 px result per run at ×4, whose 48-channel layer before the last conv is
 * 50 MB); 32 px shared so that the 10 px margins leave a 12 px blend.
 */
export const DEFAULT_TILES: Required<TileOptions> = { tileSize: 128, overlap: 32, margin: ESRGAN_SLIM_RECEPTIVE_RADIUS };

function channelsOf(image: RasterImage): 3 | 4 {
  const pixels = image.width * image.height;
  if (!(Number.isInteger(image.width) && Number.isInteger(image.height) && image.width > 0 && image.height > 0)) {
    throw new Error(`image size ${image.width}x${image.height}: positive integers are needed`);
  }
  if (image.data.length === pixels * 4) return 4;
  if (image.data.length === pixels * 3) return 3;
  throw new Error(`${image.data.length} bytes is neither RGBA nor RGB for ${image.width}x${image.height}`);
}

/** An upscaling network's session and the scale it upscales by. */
export class Upscaler {
  private readonly inputName: string;
  private readonly outputName: string;

  private constructor(
    readonly session: ModelSession,
    readonly scale: number,
  ) {
    this.inputName = session.inputs[0].name;
    this.outputName = session.outputs[0].name;
  }

  /** Wraps a session; its scale is read off a small probe run, not assumed from the file name. */
  static async fromSession(session: ModelSession): Promise<Upscaler> {
    if (session.inputs.length !== 1 || session.outputs.length !== 1) throw new Error(`${session.label}: one image input and one output expected`);
    const probe = 8;
    const out = await session.run({ [session.inputs[0].name]: { data: new Float32Array(3 * probe * probe), dims: [1, 3, probe, probe] } });
    const dims = out[session.outputs[0].name].dims;
    const scale = dims[2] / probe;
    if (dims.length !== 4 || dims[1] !== 3 || !Number.isInteger(scale) || scale < 1 || dims[3] !== scale * probe) {
      throw new Error(`${session.label}: an ${probe}x${probe} image came out as [${dims}], not an integer upscale`);
    }
    return new Upscaler(session, scale);
  }

  /** Creates the session with the engine's runtime (WebGPU or WASM in the browser, onnxruntime-node in tests). */
  static async create(label: string, bytes: Uint8Array, options: SessionFactoryOptions): Promise<Upscaler> {
    return Upscaler.fromSession(await createModelSession(label, bytes, options));
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  /** The image upscaled by the network, tile by tile; RGBA out, alpha upscaled bicubically. */
  async upscale(image: RasterImage, options: UpscaleOptions = {}): Promise<UpscaledImage> {
    const channels = channelsOf(image);
    const { width: w, height: h, data: src } = image;
    const s = this.scale;
    const tiles: Required<TileOptions> = {
      tileSize: options.tileSize ?? DEFAULT_TILES.tileSize,
      overlap: options.overlap ?? DEFAULT_TILES.overlap,
      margin: options.margin ?? DEFAULT_TILES.margin,
    };
    const cols: AxisTiles = axisTiles(w, s, tiles);
    const rows: AxisTiles = axisTiles(h, s, tiles);
    const outW = s * w;
    const outH = s * h;
    const out = new Uint8ClampedArray(outW * outH * 4);
    const tw = cols.length;
    const th = rows.length;
    const otw = s * tw;
    const oth = s * th;
    // output rows [bandTop, bandTop + oth), RGB interleaved, summed over the tiles that cover them
    const band = new Float32Array(oth * outW * 3);
    let bandTop = 0;
    const total = cols.starts.length * rows.starts.length;
    let done = 0;
    const tileInput = new Float32Array(3 * th * tw);

    for (let j = 0; j < rows.starts.length; j++) {
      const y0 = rows.starts[j];
      const bandRow = s * y0 - bandTop;
      const wy = rows.weights[j];
      for (let i = 0; i < cols.starts.length; i++) {
        if (options.signal?.aborted || options.shouldStop?.()) throw new JobCancelled();
        const x0 = cols.starts[i];
        const plane = th * tw;
        for (let y = 0; y < th; y++) {
          for (let x = 0; x < tw; x++) {
            const p = ((y0 + y) * w + x0 + x) * channels;
            const q = y * tw + x;
            tileInput[q] = src[p] / 255;
            tileInput[plane + q] = src[p + 1] / 255;
            tileInput[2 * plane + q] = src[p + 2] / 255;
          }
        }
        // a copy per run: ORT may keep or detach the buffer it is given
        const result = await this.session.run({ [this.inputName]: { data: tileInput.slice(), dims: [1, 3, th, tw] } });
        const tile = result[this.outputName];
        if (tile.dims[2] !== oth || tile.dims[3] !== otw) throw new Error(`${this.session.label}: a ${tw}x${th} tile came out as [${tile.dims}]`);
        const data = tile.data;
        const oplane = oth * otw;
        const wx = cols.weights[i];
        for (let oy = 0; oy < oth; oy++) {
          const rowBase = ((bandRow + oy) * outW + s * x0) * 3;
          const fy = wy[oy];
          for (let ox = 0; ox < otw; ox++) {
            const weight = fy * wx[ox];
            const q = oy * otw + ox;
            const b = rowBase + ox * 3;
            band[b] += data[q] * weight;
            band[b + 1] += data[oplane + q] * weight;
            band[b + 2] += data[2 * oplane + q] * weight;
          }
        }
        done++;
        options.onProgress?.(done, total);
      }
      // rows above the next tile row's first output row get nothing more: write them out, slide the band
      const finished = (j + 1 < rows.starts.length ? s * rows.starts[j + 1] : outH) - bandTop;
      for (let r = 0; r < finished; r++) {
        const from = r * outW * 3;
        const to = (bandTop + r) * outW * 4;
        for (let x = 0; x < outW; x++) {
          out[to + x * 4] = band[from + x * 3] * 255;
          out[to + x * 4 + 1] = band[from + x * 3 + 1] * 255;
          out[to + x * 4 + 2] = band[from + x * 3 + 2] * 255;
        }
      }
      band.copyWithin(0, finished * outW * 3);
      band.fill(0, (oth - finished) * outW * 3);
      bandTop += finished;
    }

    writeAlpha(out, src, channels, w, h, outW, outH);
    return { data: out, width: outW, height: outH };
  }
}

/** Alpha bicubically upscaled into `out`, or opaque where the source has none or is opaque throughout. */
function writeAlpha(out: Uint8ClampedArray, src: RasterImage['data'], channels: 3 | 4, w: number, h: number, outW: number, outH: number): void {
  let opaque = channels === 3;
  if (!opaque) {
    opaque = true;
    for (let i = 3; i < src.length; i += 4) {
      if (src[i] !== 255) {
        opaque = false;
        break;
      }
    }
  }
  if (opaque) {
    for (let i = 3; i < out.length; i += 4) out[i] = 255;
    return;
  }
  const alpha = new Uint8Array(w * h);
  for (let i = 0; i < alpha.length; i++) alpha[i] = src[i * 4 + 3];
  const up = resampleBicubic(alpha, 1, w, h, outW, outH);
  for (let i = 0; i < up.length; i++) out[i * 4 + 3] = up[i];
}

// --- bicubic baseline ------------------------------------------------------------------------------

/** Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom), the usual "bicubic". */
function keys(t: number): number {
  const a = -0.5;
  const x = Math.abs(t);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/** Per output index along one axis: the 4 clamped source indices and their weights (pixel centres aligned). */
function bicubicTaps(inSize: number, outSize: number): { index: Int32Array; weight: Float32Array } {
  const index = new Int32Array(outSize * 4);
  const weight = new Float32Array(outSize * 4);
  const ratio = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * ratio - 0.5;
    const base = Math.floor(centre);
    const t = centre - base;
    for (let k = 0; k < 4; k++) {
      index[o * 4 + k] = Math.min(inSize - 1, Math.max(0, base - 1 + k));
      weight[o * 4 + k] = keys(t - (k - 1));
    }
  }
  return { index, weight };
}

/** Separable bicubic resampling of interleaved bytes with `channels` channels; edges repeat the border pixel. */
function resampleBicubic(src: ArrayLike<number>, channels: number, w: number, h: number, outW: number, outH: number): Uint8ClampedArray {
  const cols = bicubicTaps(w, outW);
  const rows = bicubicTaps(h, outH);
  // horizontal pass at the source height: h·outW floats, a scale-th of the output's size
  const mid = new Float32Array(h * outW * channels);
  for (let y = 0; y < h; y++) {
    for (let ox = 0; ox < outW; ox++) {
      for (let c = 0; c < channels; c++) {
        let v = 0;
        for (let k = 0; k < 4; k++) v += cols.weight[ox * 4 + k] * src[(y * w + cols.index[ox * 4 + k]) * channels + c];
        mid[(y * outW + ox) * channels + c] = v;
      }
    }
  }
  const out = new Uint8ClampedArray(outW * outH * channels);
  for (let oy = 0; oy < outH; oy++) {
    const rowLength = outW * channels;
    const r0 = rows.index[oy * 4] * rowLength;
    const r1 = rows.index[oy * 4 + 1] * rowLength;
    const r2 = rows.index[oy * 4 + 2] * rowLength;
    const r3 = rows.index[oy * 4 + 3] * rowLength;
    const w0 = rows.weight[oy * 4];
    const w1 = rows.weight[oy * 4 + 1];
    const w2 = rows.weight[oy * 4 + 2];
    const w3 = rows.weight[oy * 4 + 3];
    const to = oy * rowLength;
    // Uint8ClampedArray rounds and clamps the overshoot of the cubic's negative lobes
    for (let i = 0; i < rowLength; i++) out[to + i] = w0 * mid[r0 + i] + w1 * mid[r1 + i] + w2 * mid[r2 + i] + w3 * mid[r3 + i];
  }
  return out;
}

/**
 * `rgba` (w×h RGBA bytes) upscaled by `scale` with Keys' bicubic (a = -0.5), border pixels repeated
 * past the edges; the output is round(w·scale) × round(h·scale).
 */
export function bicubicUpscale(rgba: Uint8Array | Uint8ClampedArray, w: number, h: number, scale: number): UpscaledImage {
  if (rgba.length !== w * h * 4) throw new Error(`${rgba.length} bytes is not RGBA for ${w}x${h}`);
  if (!(scale > 0)) throw new Error(`scale ${scale}: a positive number is needed`);
  const width = Math.round(w * scale);
  const height = Math.round(h * scale);
  return { data: resampleBicubic(rgba, 4, w, h, width, height), width, height };
}

/** Peak signal-to-noise ratio in dB of two equal-sized RGBA byte images over R, G and B (alpha ignored); Infinity when equal. */
export function psnr(a: Uint8Array | Uint8ClampedArray, b: Uint8Array | Uint8ClampedArray): number {
  if (a.length !== b.length || a.length % 4 !== 0) throw new Error(`images of ${a.length} and ${b.length} bytes are not two equal RGBA images`);
  let sum = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = a[i + c] - b[i + c];
      sum += d * d;
    }
  }
  const mse = sum / ((a.length / 4) * 3);
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}
