/** The engine's side of the API: a validated job in, images and facts about the run out. */

export interface Img2ImgJob {
  mode: 'img2img';
  /** The prompt actually used (after enhance_prompt). */
  prompt: string;
  negativePrompt: string;
  /** Multiples of 8. */
  width: number;
  height: number;
  samples: number;
  steps: number;
  guidanceScale: number;
  strength: number;
  /** Sample i uses seed + i, as the hosted API does. */
  seed: number;
  /** API scheduler name; undefined runs the model's own scheduler. */
  scheduler?: string;
  /** Request-level scheduler modifiers, applied over the model's scheduler config. */
  schedulerOverrides: Record<string, unknown>;
  /** The init image as RGBA pixels at width x height. */
  initImage: { rgba: Uint8Array | Uint8ClampedArray; width: number; height: number };
}

export type GenerationJob = Img2ImgJob;

export interface GenerationResult {
  /** PNG files, one per sample. */
  images: Uint8Array[];
  seeds: number[];
  width: number;
  height: number;
  scheduler: string;
  promptTruncated: boolean;
  /** Seconds. */
  timings: { total: number; denoise: number; stepsRun: number };
}

export type EngineProgress =
  | { phase: 'download'; modelId: string; file: string; loaded: number; total: number | null; fromCache: boolean }
  | { phase: 'load'; modelId: string; message: string }
  | { phase: 'denoise'; sample: number; samples: number; step: number; totalSteps: number }
  | { phase: 'decode'; sample: number; samples: number };
