/**
 * Validates and coerces an img2img request of the hosted API into a normalized request, or returns
 * the API's field-map error. Never throws for bad input.
 */
import { z } from 'zod';
import {
  flagField, integerField, optionalFlagField, issuesToFieldErrors, numberField, optionalText, requiredText, seedField, trackIdField, webhookField,
} from './request-fields.ts';
import { errorResponse, type ErrorResponse, type FieldErrors } from './responses.ts';
import { isSupportedScheduler, SCHEDULER_NAMES } from '../engine/schedulers/index.ts';

/** Appended by enhance_prompt: "yes"; fixed so that a seed reproduces the same image. */
export const ENHANCE_SUFFIX = ', highly detailed, sharp focus, professional photography, 8k';

export const LIMITS = { minSize: 64, maxSize: 1024, maxSamples: 4, maxSteps: 50, maxGuidance: 20 } as const;

const ALGORITHM_TYPES = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++'] as const;

const requestObject = z.object({
  key: z.unknown().optional(),
  prompt: requiredText('prompt'),
  negative_prompt: optionalText('negative_prompt'),
  init_image: requiredText('init_image'),
  width: integerField('width', LIMITS.minSize, LIMITS.maxSize, 512),
  height: integerField('height', LIMITS.minSize, LIMITS.maxSize, 512),
  samples: integerField('samples', 1, LIMITS.maxSamples, 1),
  num_inference_steps: integerField('num_inference_steps', 1, LIMITS.maxSteps, 30),
  guidance_scale: numberField('guidance_scale', 0, LIMITS.maxGuidance, 7.5),
  strength: numberField('strength', 0, 1, 0.7),
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
});

export interface NormalizedRequest {
  prompt: string;
  /** The prompt the engine runs: the prompt plus the enhance suffix when asked. */
  promptUsed: string;
  negativePrompt: string;
  initImage: string;
  /** Rounded down to a multiple of 8, as diffusers does. */
  width: number;
  height: number;
  samples: number;
  steps: number;
  guidanceScale: number;
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
}

export function validateImg2ImgRequest(request: unknown, knownModels: readonly string[]): NormalizedRequest | ErrorResponse {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return errorResponse('The request must be a JSON object.');
  }
  const parsed = requestObject.safeParse(request);
  if (!parsed.success) return errorResponse(issuesToFieldErrors(parsed.error.issues));
  const r = parsed.data;
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);

  if (r.guidance_scale > 0 && r.guidance_scale < 1) {
    add('guidance_scale', 'The guidance scale must be 0 (no guidance) or between 1 and 20.');
  }
  if (Math.floor(r.num_inference_steps * r.strength) < 1) {
    const least = Math.ceil((1 / r.num_inference_steps) * 1000) / 1000;
    add('strength', `The strength is too low for ${r.num_inference_steps} steps: no denoising step would run (use at least ${least}, or more steps).`);
  }
  if (r.scheduler !== undefined && !isSupportedScheduler(r.scheduler)) {
    const known = (SCHEDULER_NAMES as readonly string[]).includes(r.scheduler);
    add('scheduler', known
      ? `The ${r.scheduler} does not sample a Stable Diffusion model's latents and cannot be used here.`
      : `The selected scheduler is invalid. Use one of: ${SCHEDULER_NAMES.filter(isSupportedScheduler).join(', ')}.`);
  }
  if (r.algorithm_type !== undefined && !(ALGORITHM_TYPES as readonly string[]).includes(r.algorithm_type)) {
    add('algorithm_type', `The algorithm type must be one of: ${ALGORITHM_TYPES.join(', ')}.`);
  }
  if (r.model_id !== undefined && !knownModels.includes(r.model_id)) {
    add('model_id', `The model id "${r.model_id}" is not available here. Available: ${knownModels.join(', ')}.`);
  }
  if (Object.keys(errors).length > 0) return errorResponse(errors);

  const overrides: Record<string, unknown> = {};
  if (r.use_karras_sigmas !== undefined) overrides.use_karras_sigmas = r.use_karras_sigmas;
  if (r.algorithm_type !== undefined) overrides.algorithm_type = r.algorithm_type;

  return {
    prompt: r.prompt,
    promptUsed: r.enhance_prompt ? r.prompt + ENHANCE_SUFFIX : r.prompt,
    negativePrompt: r.negative_prompt ?? '',
    initImage: r.init_image,
    width: r.width - (r.width % 8),
    height: r.height - (r.height % 8),
    samples: r.samples,
    steps: r.num_inference_steps,
    guidanceScale: r.guidance_scale,
    strength: r.strength,
    seed: r.seed,
    safetyChecker: r.safety_checker,
    enhancePrompt: r.enhance_prompt,
    base64: r.base64,
    webhook: r.webhook,
    trackId: r.track_id,
    scheduler: r.scheduler,
    schedulerOverrides: overrides,
    modelId: r.model_id,
  };
}

export function isErrorResponse(v: unknown): v is ErrorResponse {
  return typeof v === 'object' && v !== null && (v as { status?: unknown }).status === 'error';
}
