/**
 * Live previews of the latents while a job denoises. Two decoders: TAESD (madebyollin's tiny
 * autoencoder, converted by tools/taesd.ts) when its model is in the store, and otherwise the
 * linear latent-to-RGB approximation popular UIs use. A budget keeps previews under a fraction
 * (10 %) of the time spent stepping: TAESD runs every k steps when k stays small, else the
 * nearly free linear preview runs instead.
 */
import type { ModelSession } from './runtime.ts';

export type PreviewDecoderKind = 'taesd' | 'linear';

export interface PreviewImage {
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
  decoder: PreviewDecoderKind;
  /** What making this preview cost, for the overhead the budget keeps to. */
  seconds: number;
}

/**
 * SD 1.x latent channel -> RGB weights, rows L1..L4, columns R, G, B (AUTOMATIC1111's "cheap
 * approximation", also ComfyUI's first SD15 latent_rgb_factors). They apply to the raw latents
 * the UNet sees and give RGB in about [-1, 1].
 */
export const SD_LATENT_RGB: readonly (readonly [number, number, number])[] = [
  [0.298, 0.207, 0.208],
  [0.187, 0.286, 0.173],
  [-0.158, 0.189, 0.264],
  [-0.184, -0.271, -0.473],
];

/** RGB in [-1, 1] of one latent pixel, mapped to [0, 1] as the approximation's users do. */
function linearRgbAt(latents: Float32Array, plane: number, i: number, channels: number, out: Float32Array, o: number): void {
  let r = 0;
  let g = 0;
  let b = 0;
  for (let c = 0; c < Math.min(channels, 4); c++) {
    const v = latents[c * plane + i];
    const f = SD_LATENT_RGB[c];
    r += v * f[0];
    g += v * f[1];
    b += v * f[2];
  }
  out[o] = (r + 1) / 2;
  out[o + 1] = (g + 1) / 2;
  out[o + 2] = (b + 1) / 2;
}

/**
 * The linear approximation of latents [1, C, h, w] (raw, not divided by the scaling factor) as
 * RGBA, upscaled by `scale` with bilinear filtering (pixel centres aligned, edges clamped). Live
 * previews use scale 1 and let the page's canvas upscale: at 8x the upscale costs 100x the
 * approximation itself, more than a tiny model's whole step.
 */
export function linearPreview(latents: Float32Array, dims: readonly number[], scale = 1): { rgba: Uint8ClampedArray; width: number; height: number } {
  const [, channels, h, w] = dims;
  const plane = h * w;
  const rgb = new Float32Array(plane * 3);
  for (let i = 0; i < plane; i++) linearRgbAt(latents, plane, i, channels, rgb, i * 3);
  const width = w * scale;
  const height = h * scale;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(h - 1, Math.max(0, (y + 0.5) / scale - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(w - 1, Math.max(0, (x + 0.5) / scale - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      const o = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        const top = rgb[(y0 * w + x0) * 3 + c] * (1 - fx) + rgb[(y0 * w + x1) * 3 + c] * fx;
        const bottom = rgb[(y1 * w + x0) * 3 + c] * (1 - fx) + rgb[(y1 * w + x1) * 3 + c] * fx;
        // Uint8ClampedArray rounds and clamps to [0, 255]
        rgba[o + c] = (top * (1 - fy) + bottom * fy) * 255;
      }
      rgba[o + 3] = 255;
    }
  }
  return { rgba, width, height };
}

/** Planar RGB [3, H, W] in [0, 1] -> RGBA. */
export function planarToRgba(rgb: Float32Array, width: number, height: number): Uint8ClampedArray {
  const plane = width * height;
  const rgba = new Uint8ClampedArray(plane * 4);
  for (let i = 0; i < plane; i++) {
    rgba[i * 4] = rgb[i] * 255;
    rgba[i * 4 + 1] = rgb[plane + i] * 255;
    rgba[i * 4 + 2] = rgb[2 * plane + i] * 255;
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

/** TAESD's decoder as an ORT session: raw latents [1, 4, h, w] -> RGB [1, 3, 8h, 8w] in [0, 1]. */
export class TaesdDecoder {
  /** Seconds per output pixel, from a small calibration run; null until calibrated. */
  private secondsPerPixel: number | null = null;
  /** Measured seconds of a full decode, by latent size. */
  private readonly measured = new Map<string, number>();

  constructor(
    private readonly session: ModelSession,
    private readonly now: () => number = () => performance.now() / 1000,
  ) {}

  async decode(latents: Float32Array, dims: readonly number[]): Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> {
    const [, , h, w] = dims;
    // a copy: ORT may keep or detach what it is given, and these are the loop's own latents
    const data = latents.slice(0, 4 * h * w);
    const out = await this.session.run({ [this.session.inputs[0].name]: { data, dims: [1, 4, h, w] } });
    const image = out[this.session.outputs[0].name];
    const [, , height, width] = image.dims;
    return { rgba: planarToRgba(image.data as Float32Array, width, height), width, height };
  }

  /** Times a small decode (twice: the first pays for allocation) to estimate bigger ones. */
  async calibrate(): Promise<void> {
    if (this.secondsPerPixel !== null) return;
    const size = 4;
    const zeros = new Float32Array(4 * size * size);
    await this.decode(zeros, [1, 4, size, size]);
    const started = this.now();
    await this.decode(zeros, [1, 4, size, size]);
    // a small decode's fixed overheads make this rate, and so the estimate, on the safe side
    this.secondsPerPixel = (this.now() - started) / (64 * size * size);
  }

  get calibrated(): boolean {
    return this.secondsPerPixel !== null;
  }

  estimate(h: number, w: number): number {
    return this.measured.get(`${h}x${w}`) ?? (this.secondsPerPixel ?? Infinity) * 64 * h * w;
  }

  record(h: number, w: number, seconds: number): void {
    this.measured.set(`${h}x${w}`, seconds);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export interface LivePreviewOptions {
  /** Previews may cost at most this fraction of the time spent in steps. */
  budget?: number;
  /** TAESD is used only when the budget lets it run at least every this many steps. */
  maxTaesdInterval?: number;
  /** Seconds between previews that read latents back from the GPU (wants()): at most four a second by default. */
  minDeviceInterval?: number;
  now?: () => number;
}

/** Below this budget per TAESD interval (seconds) calibrating TAESD is not worth it: the linear preview runs. */
const MIN_TAESD_SECONDS = 0.005;

/**
 * The previews of one image's denoising loop. Call afterStep after every step with the time the
 * step took; it returns a preview when the budget allows one, else null (never after the last
 * step: the real decode follows).
 */
export class LivePreview {
  private readonly budget: number;
  private readonly maxTaesdInterval: number;
  private readonly now: () => number;
  private stepSeconds = 0;
  /** The first step's time: it carries one-off costs (shader compilation, allocation), so the decoder is chosen without it. */
  private firstStepSeconds = 0;
  private previewSeconds = 0;
  private mode: PreviewDecoderKind | null = null;
  private linearCost = 0;
  private lastSize: [number, number] = [0, 0];
  private lastPreviewAt: number | null = null;
  /** The step whose latents wants() asked the GPU loop for. */
  private promisedStep = 0;
  private readonly minDeviceInterval: number;

  constructor(
    private readonly taesd: TaesdDecoder | null,
    options: LivePreviewOptions = {},
  ) {
    this.budget = options.budget ?? 0.1;
    this.maxTaesdInterval = options.maxTaesdInterval ?? 4;
    this.minDeviceInterval = options.minDeviceInterval ?? 0.25;
    this.now = options.now ?? (() => performance.now() / 1000);
  }

  /** Time spent on previews over time spent on steps so far. */
  get overhead(): number {
    return this.stepSeconds > 0 ? this.previewSeconds / this.stepSeconds : 0;
  }

  get decoder(): PreviewDecoderKind | null {
    return this.mode;
  }

  /**
   * Asked before a step runs on the GPU: whether a preview after it would fit the budget, at the pace
   * of the steps so far (the first step always: a linear preview at once). No means its latents stay on the GPU.
   */
  wants(step: number, totalSteps: number): boolean {
    if (step >= totalSteps) return false;
    const wanted = step === 1 || this.fitsBefore(step);
    if (wanted) this.promisedStep = step;
    return wanted;
  }

  private fitsBefore(step: number): boolean {
    // Each read-back drains the GPU's queue: a few previews a second is all the eye needs. The read
    // would happen when the coming step ends, at the pace of the steps so far.
    const readAt = this.now() + this.stepSeconds / (step - 1);
    if (this.lastPreviewAt !== null && readAt - this.lastPreviewAt < this.minDeviceInterval) return false;
    const estimate = this.mode === 'taesd' ? this.taesd!.estimate(...this.lastSize) : this.linearCost;
    const expectedStepSeconds = (this.stepSeconds * step) / (step - 1);
    return this.previewSeconds + estimate <= this.budget * expectedStepSeconds;
  }

  /** `latents` is null when the step left them on the GPU: the step's time still counts. */
  async afterStep(step: number, totalSteps: number, seconds: number, latents: Float32Array | null, dims: readonly number[]): Promise<PreviewImage | null> {
    this.stepSeconds += seconds;
    if (step === 1) this.firstStepSeconds = seconds;
    if (step >= totalSteps || !latents) return null;
    // latents read back from the GPU because wants() said yes are shown, whatever the step turned out to cost
    const promised = this.promisedStep === step;
    const [, channels, h, w] = dims;
    this.lastSize = [h, w];
    // The first step's pace says little about the steps to come (on a GPU it compiles the UNet's
    // shaders), so its preview is the linear one and the decoder is chosen at the next preview.
    const mode = this.mode ?? (step === 1 ? 'linear' : (this.mode = await this.chooseMode(step, channels, h, w)));
    const estimate = mode === 'taesd' ? this.taesd!.estimate(h, w) : this.linearCost;
    if (!promised && this.previewSeconds + estimate > this.budget * this.stepSeconds) return null;
    const started = this.now();
    let image: { rgba: Uint8ClampedArray; width: number; height: number };
    let used: PreviewDecoderKind = mode;
    try {
      image = mode === 'taesd' ? await this.taesd!.decode(latents, dims) : linearPreview(latents, dims);
    } catch {
      // a preview must never fail the job: go on with the linear one
      this.mode = used = 'linear';
      image = linearPreview(latents, dims);
    }
    const cost = this.now() - started;
    this.lastPreviewAt = this.now();
    this.previewSeconds += cost;
    if (used === 'taesd') this.taesd!.record(h, w, cost);
    else this.linearCost = cost;
    return { ...image, decoder: used, seconds: cost };
  }

  /** TAESD when it fits the budget at least every maxTaesdInterval steps at the pace of the steps so far. */
  private async chooseMode(step: number, channels: number, h: number, w: number): Promise<PreviewDecoderKind> {
    if (!this.taesd || channels !== 4) return 'linear';
    const pace = (this.stepSeconds - this.firstStepSeconds) / (step - 1);
    const perInterval = this.budget * pace * this.maxTaesdInterval;
    if (perInterval < MIN_TAESD_SECONDS) return 'linear';
    // Calibration happens once per decoder, like creating its session: it is not charged to this run.
    await this.taesd.calibrate();
    return this.taesd.estimate(h, w) <= perInterval ? 'taesd' : 'linear';
  }
}
