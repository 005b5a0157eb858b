/**
 * Validates the image-editing calls the app answers locally: super_resolution (the hosted
 * {url | init_image, scale, face_enhance, …}) and base64_crop ({image, crop}). Same conventions
 * and field-map errors as the generation calls (validate-request.ts); never throws.
 */
import { z } from 'zod';
import { flagField, optionalText, trackIdField, webhookField } from './request-fields.ts';
import { errorResponse, type ErrorResponse, type FieldErrors } from './responses.ts';
import { snapshotRequest } from './request-snapshot.ts';

/** The factors the bundled ESRGAN graphs exist for. */
export const UPSCALE_FACTORS = [2, 3, 4] as const;
export type UpscaleFactor = (typeof UPSCALE_FACTORS)[number];

/** The one upscaler that runs here; the hosted names (RealESRGAN_x4plus, …) are the hosted service's. */
export const LOCAL_UPSCALER_ID = 'esrgan-slim';

export interface SuperResolutionRequest {
  /** The image as given (URL, data: URL, blob: URL or raw base64) and the field it came in. */
  image: string;
  imageField: 'url' | 'init_image';
  scale: UpscaleFactor;
  base64: boolean;
  webhook: string | null;
  trackId: string | number | null;
  instantResponse: boolean;
}

export interface Base64CropRequest {
  image: string;
  crop: boolean;
}

const scaleField = z.preprocess(
  (v) => (v === null || v === undefined || (typeof v === 'string' && v.trim() === '') ? undefined : typeof v === 'string' ? Number(v) : v),
  z.union(UPSCALE_FACTORS.map((f) => z.literal(f)) as unknown as [z.ZodLiteral<2>, z.ZodLiteral<3>, z.ZodLiteral<4>], {
    error: `The scale must be one of ${UPSCALE_FACTORS.join(', ')} here (the local upscaler's factors).`,
  }).optional().transform((v) => v ?? 4),
);

/** Fields read one by one, so one answer lists every problem. */
function readFields(
  request: unknown,
  fields: Record<string, z.ZodType>,
): { ok: true; values: Record<string, unknown>; errors: FieldErrors } | { ok: false; error: ErrorResponse } {
  const snapshot = snapshotRequest(request);
  if (!snapshot.ok) return snapshot;
  const errors: FieldErrors = {};
  const values: Record<string, unknown> = {};
  for (const [field, schema] of Object.entries(fields)) {
    let parsed: ReturnType<z.ZodType['safeParse']>;
    try {
      parsed = schema.safeParse(snapshot.fields[field]);
    } catch (e) {
      // A value whose traps throw when zod looks at it.
      errors[field] = [`The ${field.replace(/_/g, ' ')} could not be read: ${e instanceof Error ? e.message : 'it threw'}`];
      continue;
    }
    if (parsed.success) values[field] = parsed.data;
    else errors[field] = parsed.error.issues.map((i) => i.message);
  }
  return { ok: true, values, errors };
}

export function validateSuperResolution(request: unknown): SuperResolutionRequest | ErrorResponse {
  const read = readFields(request, {
    url: optionalText('url'),
    init_image: optionalText('init_image'),
    scale: scaleField,
    face_enhance: flagField('face_enhance', false),
    model_id: optionalText('model_id'),
    base64: flagField('base64', false),
    webhook: webhookField(),
    track_id: trackIdField(),
    instant_response: flagField('instant_response', false),
  });
  if (!read.ok) return read.error;
  const v = read.values as {
    url?: string; init_image?: string; scale: UpscaleFactor; face_enhance: boolean; model_id?: string; base64: boolean;
    webhook: string | null; track_id: string | number | null; instant_response: boolean;
  };
  const errors = read.errors;
  const image = v.url ?? v.init_image;
  const given = (field: string) => !(field in errors);
  if (image === undefined && given('url') && given('init_image')) errors.url = ['The url field is required (the image to upscale; init_image is accepted too).'];
  if (v.face_enhance) {
    errors.face_enhance = ['Face enhancement (GFPGAN) does not run locally: send face_enhance "no", or use the hosted API (remote or auto mode with a key).'];
  }
  if (v.model_id !== undefined && v.model_id !== LOCAL_UPSCALER_ID) {
    errors.model_id = [`The upscaler "${v.model_id}" does not run locally; the local one is "${LOCAL_UPSCALER_ID}" (ESRGAN x2, x3, x4).`];
  }
  if (Object.keys(errors).length > 0) return errorResponse(errors);
  return {
    image: image!,
    imageField: v.url !== undefined ? 'url' : 'init_image',
    scale: v.scale,
    base64: v.base64,
    webhook: v.webhook,
    trackId: v.track_id,
    instantResponse: v.instant_response,
  };
}

export function validateBase64Crop(request: unknown): Base64CropRequest | ErrorResponse {
  const read = readFields(request, { image: optionalText('image'), crop: flagField('crop', true) });
  if (!read.ok) return read.error;
  const v = read.values as { image?: string; crop: boolean };
  const errors = read.errors;
  if (v.image === undefined && !('image' in errors)) errors.image = ['The image field is required (the image in base64, or a data: URL).'];
  if (Object.keys(errors).length > 0) return errorResponse(errors);
  return { image: v.image!, crop: v.crop };
}
