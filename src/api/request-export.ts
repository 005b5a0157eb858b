/**
 * A stored result as a request for the hosted API: the JSON body to POST, a curl command for it,
 * and the endpoint a record belongs to. The API key is always written empty: a request copied to
 * the clipboard or shown on screen must never carry the user's key. DOM-free.
 */
import { DEFAULT_ENDPOINT } from './remote-client.ts';
import type { Endpoint } from './validate-request.ts';
import { byName, fillPath, type EndpointName } from './endpoints.ts';

export interface ExportedRequest {
  endpoint: EndpointName;
  /** Where to POST it: <base> and the call's path in the endpoint table (path fields filled in). */
  url: string;
  /** The request body, `key` first and empty. */
  body: Record<string, unknown>;
  /** The body as indented JSON, for reading. */
  json: string;
  /** A POSIX shell command that sends it. */
  curl: string;
  /** What keeps the request from running unchanged on the hosted API (local-only image URLs). */
  warnings: string[];
}

/** Which call a stored result came from: local results say it in meta (img2img and inpaint report their images). */
export function endpointOf(request: Record<string, unknown>, meta: Record<string, unknown> = {}): Endpoint {
  const given = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (given(meta.mask_image)) return 'inpaint';
  if (given(meta.init_image)) return 'img2img';
  if (meta.runtime === 'local') return 'text2img';
  // Results from the hosted service: judge by the request's own fields.
  if (given(request.mask_image)) return 'inpaint';
  if (given(request.init_image)) return 'img2img';
  return 'text2img';
}

/** A seed left to chance (null, "", -1, missing). */
function isRandomSeed(seed: unknown): boolean {
  return seed === null || seed === undefined || seed === -1 || (typeof seed === 'string' && (seed.trim() === '' || seed.trim() === '-1'));
}

/**
 * The request as sent, without its key, but with the seed that was actually used when the request
 * left it random, so that running it again (here or on the hosted API) makes the same image.
 */
export function reproducibleRequest(request: Record<string, unknown>, meta: Record<string, unknown> = {}): Record<string, unknown> {
  const { key: _key, ...rest } = request;
  const seed = meta.seed;
  if (isRandomSeed(rest.seed) && typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) rest.seed = seed;
  return rest;
}

/** Single-quotes a word for a POSIX shell (a ' inside becomes '\''). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The URL a call is POSTed to: the base and the call's path in the endpoint table. A path field
 * (fine_tune_status's training_id) is filled from `fields` when given, else left as `{training_id}`.
 */
export function hostedUrl(endpoint: EndpointName, base: string = DEFAULT_ENDPOINT, fields: Record<string, unknown> = {}): string {
  const entry = byName(endpoint);
  if (!entry) throw new Error(`The endpoint table has no ${endpoint}.`);
  const filled = fillPath(entry, fields);
  return `${base.trim().replace(/\/+$/, '')}${filled.ok ? filled.path : entry.path}`;
}

/** The hosted API request that reproduces a stored result, with an empty key. */
export function exportRequest(
  endpoint: EndpointName,
  request: Record<string, unknown>,
  meta: Record<string, unknown> = {},
  base: string = DEFAULT_ENDPOINT,
): ExportedRequest {
  const entry = byName(endpoint);
  const reproducible = reproducibleRequest(request, meta);
  // A field the path carries is not sent again in the body.
  const filled = entry ? fillPath(entry, reproducible) : null;
  // `key` first, as the hosted API's own examples write it.
  const body: Record<string, unknown> = { key: '', ...(filled?.ok ? filled.body : reproducible) };
  const url = hostedUrl(endpoint, base, reproducible);
  const warnings: string[] = [];
  for (const field of ['init_image', 'mask_image', 'image', 'url', 'control_image']) {
    const v = body[field];
    if (typeof v === 'string' && v.startsWith('blob:')) {
      warnings.push(`${field} is a blob: URL that only this page can read; the hosted API needs a public URL there.`);
    }
  }
  const compact = JSON.stringify(body);
  const curl = [`curl -X POST ${shellQuote(url)}`, `-H 'Content-Type: application/json'`, `--data-raw ${shellQuote(compact)}`].join(' \\\n  ');
  return { endpoint, url, body, json: JSON.stringify(body, null, 2), curl, warnings };
}
