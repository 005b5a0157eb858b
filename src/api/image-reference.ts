/**
 * Image fields (`init_image`, `mask_image`, `image`, `url`) as they are echoed and kept. A public http(s) URL is
 * short and means the same everywhere, so it is echoed as is. Inline data (a data: URL, raw base64)
 * can be tens of MB and a blob: URL dies with its page, so neither is repeated in `meta`, in the
 * history record or in a webhook: they get a short reference instead, and the history keeps the
 * image's bytes once, beside the record, for "reuse settings".
 */

/** `image` is outpaint's (and base64_crop's) name for the picture it works on, `url` super_resolution's. */
export const IMAGE_FIELDS = ['init_image', 'mask_image', 'image', 'url'] as const;
export type ImageField = (typeof IMAGE_FIELDS)[number];

/** Longer http(s) "URLs" are data in disguise (or abuse) and are not echoed either. */
const MAX_ECHOED_URL = 2048;
const PREFIX = 'inline image';

/** Whether the value is repeated as is (a public http(s) URL of a sane length). */
export function isEchoedImageUrl(value: string): boolean {
  const v = value.trim();
  return v.length <= MAX_ECHOED_URL && /^https?:\/\//i.test(v);
}

/** What stands for an image field in meta, history and webhooks. */
export function imageReference(value: unknown): unknown {
  if (typeof value !== 'string' || isEchoedImageUrl(value) || value.startsWith(`${PREFIX} (`)) return value;
  const v = value.trim();
  if (v === '') return value;
  const kind = /^blob:/i.test(v) ? 'a blob: URL of the page that sent it' : /^data:([^;,]*)/i.exec(v)?.[1] || 'base64';
  return `${PREFIX} (${kind}, ${describeLength(v.length)} as sent; not repeated)`;
}

/** Whether a stored value is such a reference (the history has the bytes). */
export function isImageReference(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(`${PREFIX} (`);
}

/** A copy of an object with its image fields replaced by references where they are inline. */
export function withImageReferences<T extends Record<string, unknown>>(fields: T): T {
  const out: Record<string, unknown> = { ...fields };
  for (const f of IMAGE_FIELDS) if (f in out) out[f] = imageReference(out[f]);
  return out as T;
}

function describeLength(chars: number): string {
  if (chars < 1024) return `${chars} characters`;
  if (chars < 1024 * 1024) return `${(chars / 1024).toFixed(1)} K characters`;
  return `${(chars / (1024 * 1024)).toFixed(1)} M characters`;
}
