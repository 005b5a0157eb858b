/**
 * Validates and coerces a text2img, img2img or inpaint request of the hosted API into a normalized
 * request, or returns the API's field-map error. Never throws for bad input.
 */
import { z } from 'zod';
import {
  flagField, integerField, optionalFlagField, numberField, optionalText, requiredText, seedField, trackIdField, webhookField,
} from './request-fields.ts';
import { errorResponse, type ErrorResponse, type FieldErrors } from './responses.ts';
import { createScheduler } from '../engine/schedulers/index.ts';
import { resolveSchedulerAlias } from './scheduler-aliases.ts';
import { snapshotRequest } from './request-snapshot.ts';
import { withImageReferences } from './image-reference.ts';

/** Appended by enhance_prompt: "yes"; fixed so that a seed reproduces the same image. */
export const ENHANCE_SUFFIX = ', highly detailed, sharp focus, professional photography, 8k';

export const LIMITS = { minSize: 64, maxSize: 1024, maxSamples: 4, maxSteps: 50, maxGuidance: 20 } as const;

const ALGORITHM_TYPES = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++'] as const;

export type Endpoint = 'text2img' | 'img2img' | 'inpaint';
/** What the local engine generates: the three calls, and outpainting (inpainting on a larger canvas). */
export type GenerationCall = Endpoint | 'outpaint';

const commonFields = {
  key: z.unknown().optional(),
  prompt: requiredText('prompt'),
  negative_prompt: optionalText('negative_prompt'),
  width: integerField('width', LIMITS.minSize, LIMITS.maxSize, 512),
  height: integerField('height', LIMITS.minSize, LIMITS.maxSize, 512),
  samples: integerField('samples', 1, LIMITS.maxSamples, 1),
  num_inference_steps: integerField('num_inference_steps', 1, LIMITS.maxSteps, 30),
  guidance_scale: numberField('guidance_scale', 0, LIMITS.maxGuidance, 7.5),
  seed: seedField(),
  safety_checker: flagField('safety_checker', false),
  enhance_prompt: flagField('enhance_prompt', false),
  base64: flagField('base64', false),
  webhook: webhookField(),
  track_id: trackIdField(),
  scheduler: optionalText('scheduler'),
  use_karras_sigmas: optionalFlagField('use_karras_sigmas'),
  algorithm_type: optionalText('algorithm_type'),
  model_id: optionalText('model_id'),
  // The community-models (v4) fields: LoRA is refused below until it runs here; upscale runs ESRGAN on the result.
  lora_model: optionalText('lora_model'),
  lora_strength: optionalText('lora_strength'),
  upscale: upscaleField(),
  // Extension: answer at once with a "processing" object instead of waiting for the images.
  instant_response: flagField('instant_response', false),
};

const img2imgFields = {
  ...commonFields,
  init_image: requiredText('init_image'),
  strength: numberField('strength', 0, 1, 0.7),
};

/** The hosted outpaint call: the image grows to width x height; overlap_width pixels of its edge are redrawn to hide the seam. */
const outpaintFields = {
  ...commonFields,
  image: requiredText('image'),
  overlap_width: integerField('overlap_width', 0, 256, 32),
};

const FIELDS = {
  text2img: commonFields,
  img2img: img2imgFields,
  inpaint: { ...img2imgFields, mask_image: requiredText('mask_image') },
  outpaint: outpaintFields,
} as const;

/** The fields of the image-editing calls (validate-image-request.ts), kept in the history too. */
const IMAGE_EDIT_FIELDS = ['url', 'scale', 'face_enhance', 'crop'];

/** Every field any endpoint knows, parsed. */
type ParsedFields = z.output<z.ZodObject<typeof FIELDS.inpaint>> & z.output<z.ZodObject<typeof outpaintFields>>;

/** The request fields the API knows, for any endpoint (the key among them). */
export const KNOWN_REQUEST_FIELDS: readonly string[] = [
  ...new Set([...Object.keys(FIELDS.inpaint), ...Object.keys(outpaintFields), ...IMAGE_EDIT_FIELDS]),
];

/**
 * The request as history and webhooks keep it: the API's known fields only, each a JSON primitive
 * as sent, never the key, and inline images as references (image-reference.ts). Never throws.
 */
export function storedRequest(request: unknown): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  if (typeof request !== 'object' || request === null) return kept;
  for (const field of KNOWN_REQUEST_FIELDS) {
    if (field === 'key') continue;
    let v: unknown;
    try {
      if (!Object.hasOwn(request, field)) continue;
      v = (request as Record<string, unknown>)[field];
    } catch {
      continue; // an unreadable field is not kept; validation already said so
    }
    if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) kept[field] = v;
  }
  return withImageReferences(kept);
}

export interface NormalizedRequest {
  mode: GenerationCall;
  /** 1 (none), or the factor super resolution enlarges each result by. */
  upscale: number;
  prompt: string;
  /** The prompt the engine runs: the prompt plus the enhance suffix when asked. */
  promptUsed: string;
  negativePrompt: string;
  /** img2img and inpaint; outpaint's `image`. */
  initImage?: string;
  /** outpaint: pixels of the image's edge redrawn and blended. */
  overlapWidth?: number;
  /** inpaint: white = repaint, black = keep. */
  maskImage?: string;
  /** Rounded down to a multiple of 8, as diffusers does. */
  width: number;
  height: number;
  samples: number;
  steps: number;
  guidanceScale: number;
  /** img2img and inpaint; 1 for text2img and outpaint. */
  strength: number;
  seed: number | null;
  safetyChecker: boolean;
  enhancePrompt: boolean;
  base64: boolean;
  webhook: string | null;
  trackId: string | number | null;
  scheduler?: string;
  schedulerOverrides: Record<string, unknown>;
  modelId?: string;
  instantResponse: boolean;
}

export function validateRequest(endpoint: GenerationCall, request: unknown, knownModels: readonly string[]): NormalizedRequest | ErrorResponse {
  const snapshot = snapshotRequest(request);
  if (!snapshot.ok) return snapshot.error;
  const raw = snapshot.fields;
  // Field by field, so that one answer lists every problem, cross-field ones included.
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => (errors[field] ??= []).includes(message) || errors[field].push(message);
  const values: Record<string, unknown> = {};
  for (const [field, schema] of Object.entries(FIELDS[endpoint])) {
    let parsed: ReturnType<z.ZodType['safeParse']>;
    try {
      parsed = (schema as z.ZodType).safeParse(raw[field]);
    } catch (e) {
      // A value that throws when looked at (a Proxy whose traps throw): zod's checks touch it.
      add(field, `The ${field.replace(/_/g, ' ')} could not be read: ${e instanceof Error ? e.message : 'it threw'}`);
      continue;
    }
    if (parsed.success) values[field] = parsed.data;
    else for (const issue of parsed.error.issues) add(field, issue.message);
  }
  const r = values as Partial<ParsedFields>;
  const ok = (field: keyof ParsedFields) => !(field in errors);
  const alias = r.scheduler !== undefined ? resolveSchedulerAlias(r.scheduler) : null;
  if (alias) {
    // The request's own modifiers win over what the sampler name implies.
    r.scheduler = alias.scheduler;
    r.use_karras_sigmas ??= alias.use_karras_sigmas;
    r.algorithm_type ??= alias.algorithm_type;
  }

  if (ok('guidance_scale') && r.guidance_scale! > 0 && r.guidance_scale! < 1) {
    add('guidance_scale', 'The guidance scale must be 0 (no guidance) or between 1 and 20.');
  }
  if ((endpoint === 'img2img' || endpoint === 'inpaint') && ok('num_inference_steps') && ok('strength') && Math.floor(r.num_inference_steps! * r.strength!) < 1) {
    const least = Math.ceil((1 / r.num_inference_steps!) * 1000) / 1000;
    add('strength', `The strength is too low for ${r.num_inference_steps} steps: no denoising step would run (use at least ${least}, or more steps).`);
  }
  // Samples use seed, seed + 1, …: the last one must be a seed too.
  if (ok('seed') && ok('samples') && r.seed !== null && r.seed !== undefined && r.seed > Number.MAX_SAFE_INTEGER - (r.samples! - 1)) {
    add('seed', `The seed may not be greater than ${Number.MAX_SAFE_INTEGER - r.samples! + 1} with ${r.samples} samples (they use seed, seed + 1, …).`);
  }
  if (r.algorithm_type !== undefined && !(ALGORITHM_TYPES as readonly string[]).includes(r.algorithm_type)) {
    add('algorithm_type', `The algorithm type must be one of: ${ALGORITHM_TYPES.join(', ')}.`);
  }
  if (r.scheduler !== undefined) {
    // The registry's own errors say why a name (unknown, or not for SD) or a modifier is refused.
    const refusal = (overrides: Record<string, unknown>) => {
      try {
        createScheduler(r.scheduler!, overrides);
        return null;
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    };
    const nameRefused = refusal({});
    if (nameRefused) add('scheduler', nameRefused);
    else if (ok('use_karras_sigmas') && ok('algorithm_type')) {
      const modifierRefused = refusal(schedulerOverrides(r));
      if (modifierRefused) add(r.algorithm_type !== undefined ? 'algorithm_type' : 'use_karras_sigmas', modifierRefused);
    }
  }
  if (r.lora_model !== undefined || r.lora_strength !== undefined) {
    add(r.lora_model !== undefined ? 'lora_model' : 'lora_strength',
      'LoRA weights do not run locally yet: leave lora_model and lora_strength out, or send the request to the hosted API (remote or auto mode with a key).');
  }
  if (r.model_id !== undefined && !knownModels.includes(r.model_id)) {
    add('model_id', `The model id "${r.model_id}" is not available here. Available: ${knownModels.join(', ')}.`);
  }
  if (Object.keys(errors).length > 0) return errorResponse(errors);

  const v = r as ParsedFields;
  return {
    mode: endpoint,
    upscale: v.upscale,
    prompt: v.prompt,
    promptUsed: v.enhance_prompt ? v.prompt + ENHANCE_SUFFIX : v.prompt,
    negativePrompt: v.negative_prompt ?? '',
    initImage: endpoint === 'outpaint' ? v.image : v.init_image,
    overlapWidth: endpoint === 'outpaint' ? v.overlap_width : undefined,
    maskImage: v.mask_image,
    width: v.width - (v.width % 8),
    height: v.height - (v.height % 8),
    samples: v.samples,
    steps: v.num_inference_steps,
    guidanceScale: v.guidance_scale,
    strength: endpoint === 'img2img' || endpoint === 'inpaint' ? v.strength : 1,
    seed: v.seed,
    safetyChecker: v.safety_checker,
    enhancePrompt: v.enhance_prompt,
    base64: v.base64,
    webhook: v.webhook,
    trackId: v.track_id,
    scheduler: v.scheduler,
    schedulerOverrides: schedulerOverrides(v),
    modelId: v.model_id,
    instantResponse: v.instant_response,
  };
}

export function validateImg2ImgRequest(request: unknown, knownModels: readonly string[]): NormalizedRequest | ErrorResponse {
  return validateRequest('img2img', request, knownModels);
}

/**
 * The v4 upscale field: "no"/false/1 for none, "yes"/true for 2x (the hosted meaning), or the factor
 * 2, 3 or 4 (the bundled ESRGAN graphs' factors).
 */
function upscaleField() {
  return z.preprocess(
    (v) => {
      if (v === null || v === undefined || v === false) return 1;
      if (v === true) return 2;
      if (typeof v === 'string') {
        const t = v.trim().toLowerCase();
        if (t === '' || t === 'no' || t === 'false') return 1;
        if (t === 'yes' || t === 'true') return 2;
        return /^\d+$/.test(t) ? Number(t) : v;
      }
      return v;
    },
    z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)], { error: 'The upscale must be "no", "yes" (2x), or 2, 3 or 4.' }),
  );
}

/** The request-level scheduler modifiers that override the model's scheduler config. */
function schedulerOverrides(r: Partial<ParsedFields>): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  if (r.use_karras_sigmas !== undefined) overrides.use_karras_sigmas = r.use_karras_sigmas;
  if (r.algorithm_type !== undefined) overrides.algorithm_type = r.algorithm_type;
  return overrides;
}

export function isErrorResponse(v: unknown): v is ErrorResponse {
  return typeof v === 'object' && v !== null && (v as { status?: unknown }).status === 'error';
}
