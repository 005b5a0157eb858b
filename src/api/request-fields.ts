/**
 * Field rules shared by every endpoint, in the hosted API's conventions: numbers may arrive as
 * strings, flags as "yes"/"no" or booleans, optional fields as null. Messages follow the hosted
 * API's field-map style ("The width may not be greater than 1024.").
 */
import { z } from 'zod';

const label = (field: string) => field.replace(/_/g, ' ');

/** null, undefined and "" mean "not given" so that defaults apply. */
function blankToUndefined(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string' && v.trim() === '') return undefined;
  return v;
}

function numberLike(v: unknown): unknown {
  const b = blankToUndefined(v);
  if (typeof b === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(b)) return Number(b);
  return b;
}

function numberSchema(field: string) {
  return z.number({ error: `The ${label(field)} must be a number.` }).refine(Number.isFinite, `The ${label(field)} must be a number.`);
}

export function integerField(field: string, min: number, max: number, fallback: number) {
  return z.preprocess(
    numberLike,
    numberSchema(field)
      .pipe(z.number().int(`The ${label(field)} must be an integer.`))
      .pipe(z.number().min(min, `The ${label(field)} must be at least ${min}.`).max(max, `The ${label(field)} may not be greater than ${max}.`))
      .optional()
      .transform((v) => v ?? fallback),
  );
}

export function numberField(field: string, min: number, max: number, fallback: number) {
  return z.preprocess(
    numberLike,
    numberSchema(field)
      .pipe(z.number().min(min, `The ${label(field)} must be at least ${min}.`).max(max, `The ${label(field)} may not be greater than ${max}.`))
      .optional()
      .transform((v) => v ?? fallback),
  );
}

function flagLike(v: unknown): unknown {
  const b = blankToUndefined(v);
  if (typeof b === 'string') {
    const s = b.trim().toLowerCase();
    if (s === 'yes' || s === 'true') return true;
    if (s === 'no' || s === 'false') return false;
  }
  return b;
}

/** A flag that is left out when not given: "yes"/"no", true/false, "true"/"false" -> boolean | undefined. */
export function optionalFlagField(field: string) {
  return z.preprocess(flagLike, z.boolean({ error: `The ${label(field)} must be yes or no.` }).optional());
}

/** "yes"/"no", true/false, "true"/"false" -> boolean, with a default. */
export function flagField(field: string, fallback: boolean) {
  return optionalFlagField(field).transform((v) => v ?? fallback);
}

export function requiredText(field: string) {
  return z.preprocess(
    (v) => (typeof v === 'string' ? v.trim() : v),
    z.string({ error: (iss) => (iss.input === undefined || iss.input === null ? `The ${label(field)} field is required.` : `The ${label(field)} must be a string.`) })
      .min(1, `The ${label(field)} field is required.`),
  );
}

export function optionalText(field: string) {
  return z.preprocess(
    (v) => blankToUndefined(typeof v === 'string' ? v.trim() : v),
    z.string({ error: `The ${label(field)} must be a string.` }).optional(),
  );
}

/** seed: null, "", or -1 (the A1111 convention) mean "pick one"; otherwise a non-negative integer. */
export function seedField() {
  return z.preprocess(
    (v) => {
      const n = numberLike(v);
      return n === -1 ? undefined : n;
    },
    numberSchema('seed')
      .pipe(z.number().min(0, 'The seed must be at least 0.').max(Number.MAX_SAFE_INTEGER, `The seed may not be greater than ${Number.MAX_SAFE_INTEGER}.`))
      .pipe(z.number().int('The seed must be an integer.'))
      .optional()
      .transform((v) => v ?? null),
  );
}

export function webhookField() {
  return z.preprocess(
    blankToUndefined,
    z.string({ error: 'The webhook must be a URL.' })
      .refine((s) => {
        try {
          const u = new URL(s);
          return u.protocol === 'http:' || u.protocol === 'https:';
        } catch {
          return false;
        }
      }, 'The webhook must be a valid http or https URL.')
      .optional()
      .transform((v) => v ?? null),
  );
}

export function trackIdField() {
  return z.preprocess(
    blankToUndefined,
    z.union([z.string(), z.number()], { error: 'The track id must be a string or a number.' }).optional().transform((v) => v ?? null),
  );
}
