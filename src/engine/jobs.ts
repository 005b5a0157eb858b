import type { LoopStats } from './loop-stats.ts';
import type { OutpaintOverlay } from './outpaint-canvas.ts';
/** The engine's side of the API: a validated job in, images and facts about the run out. */

/** RGBA pixels at the job's width x height. */
export interface RgbaImage {
  rgba: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

interface JobBase {
  /** The prompt actually used (after enhance_prompt). */
  prompt: string;
  negativePrompt: string;
  /** Multiples of 8. */
  width: number;
  height: number;
  samples: number;
  steps: number;
  guidanceScale: number;
  /** Sample i uses seed + i, as the hosted API does. */
  seed: number;
  /** API scheduler name; undefined runs the model's own scheduler. */
  scheduler?: string;
  /** Request-level scheduler modifiers, applied over the model's scheduler config. */
  schedulerOverrides: Record<string, unknown>;
  /** Run the model's safety checker (when it has one) and black out flagged images. */
  safetyChecker: boolean;
}

/** Starts from seeded noise times the scheduler's init_noise_sigma. */
export interface Text2ImgJob extends JobBase {
  mode: 'text2img';
}

export interface Img2ImgJob extends JobBase {
  mode: 'img2img';
  strength: number;
  initImage: RgbaImage;
}

/** Mask: white = repaint, black = keep (read as a grayscale "L" image and binarised, as diffusers does). */
export interface InpaintJob extends JobBase {
  mode: 'inpaint';
  strength: number;
  initImage: RgbaImage;
  maskImage: RgbaImage;
  /** Outpainting: the original laid back over each result with a feathered weight (outpaint-canvas.ts). */
  overlay?: OutpaintOverlay;
}

export type GenerationJob = Text2ImgJob | Img2ImgJob | InpaintJob;

export interface GenerationResult {
  /** PNG files, one per sample. */
  images: Uint8Array[];
  seeds: number[];
  width: number;
  height: number;
  scheduler: string;
  promptTruncated: boolean;
  /** Whether a safety checker ran (false when not asked or the model has none). */
  safetyChecked: boolean;
  /** Per sample: flagged by the safety checker (its image is black). Empty when none ran. */
  nsfw: boolean[];
  /** Whether the model has a safety checker at all. */
  hasSafetyChecker: boolean;
  /** Seconds. */
  timings: { total: number; denoise: number; stepsRun: number; loop?: LoopStats };
}

/** A live preview of the latents after a step (see preview.ts); its buffer is transferred, not copied, to the page. */
export interface LivePreviewImage {
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
  /** TAESD, or the linear latent-to-RGB approximation. */
  decoder: 'taesd' | 'linear';
  /** What this preview cost the engine. */
  seconds: number;
}

export type EngineProgress =
  | { phase: 'download'; modelId: string; file: string; loaded: number; total: number | null; fromCache: boolean }
  | { phase: 'load'; modelId: string; message: string }
  | { phase: 'denoise'; sample: number; samples: number; step: number; totalSteps: number; preview?: LivePreviewImage }
  | { phase: 'decode'; sample: number; samples: number }
  /** Super resolution: `tile` of `tiles` done. */
  | { phase: 'upscale'; tile: number; tiles: number };

/**
 * Where progress goes. Its answer to a denoise step may be `true`: the job was cancelled. The engine
 * waits for that answer before the next step, so a cancel travels with the progress it answers
 * rather than on a message that another port's messages may overtake. Any other answer (or a
 * promise of one) means go on, so a plain logger is a sink too.
 */
export type ProgressSink = (p: EngineProgress) => unknown;
