/**
 * What leaves the API layer for storage or for another server is plain JSON: strings, finite
 * numbers, booleans, null, arrays and plain objects, and never an API key at any depth. Callers'
 * objects are not trusted: a getter or Proxy trap that throws, a BigInt, a function, a Symbol or a
 * cycle must neither throw here nor reach IndexedDB (where one such value made the whole record
 * unreadable, or unsavable) nor a webhook.
 */
import { withImageReferences } from './image-reference.ts';

/** Property names that hold an API key; dropped wherever they appear. */
const SECRET_FIELDS = new Set(['key']);

export interface PlainJsonOptions {
  /** Deeper values are dropped (default 12): a response is a few levels deep. */
  maxDepth?: number;
  /** A secret (the API key in use) replaced by *** wherever a string contains it. */
  redact?: string;
}

/**
 * A deep copy as plain JSON, or undefined where the value has none (functions, symbols, undefined,
 * a cycle, something unreadable). BigInts become their decimal string, non-finite numbers null,
 * Dates their ISO string; `key` fields are dropped at every depth.
 */
export function toPlainJson(value: unknown, options: PlainJsonOptions = {}): unknown {
  const secret = options.redact?.trim() ?? '';
  const text = secret.length >= 4 ? (s: string) => s.split(secret).join('***') : (s: string) => s;
  return copy(value, options.maxDepth ?? 12, new Set(), text);
}

/** toPlainJson for an object: always an object (empty when the value was not one). */
export function plainObject(value: unknown, options: PlainJsonOptions = {}): Record<string, unknown> {
  const out = toPlainJson(value, options);
  return out !== null && typeof out === 'object' && !Array.isArray(out) ? (out as Record<string, unknown>) : {};
}

/**
 * A response as history and webhooks keep it: plain JSON without any key, its meta's inline images
 * as short references (a 20 MB data: URL is neither stored twice nor posted to a webhook).
 */
export function plainResponse<T extends object>(response: T): T {
  const out = plainObject(response);
  if (out.meta !== null && typeof out.meta === 'object' && !Array.isArray(out.meta)) {
    out.meta = withImageReferences(out.meta as Record<string, unknown>);
  }
  return out as T;
}

function copy(value: unknown, depth: number, seen: Set<object>, text: (s: string) => string): unknown {
  switch (typeof value) {
    case 'string':
      return text(value);
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return undefined; // functions, symbols, undefined
  }
  if (value === null) return null;
  if (depth <= 0 || seen.has(value)) return undefined;
  seen.add(value);
  try {
    if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : null;
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      for (let i = 0; i < value.length; i++) {
        const item = copy(read(value, i), depth - 1, seen, text);
        out.push(item === undefined ? null : item);
      }
      return out;
    }
    // Binary data is no JSON value, and image bytes have no place in a stored record or a webhook.
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(value)) {
      if (SECRET_FIELDS.has(name) || name === '__proto__') continue;
      const item = copy(read(value, name), depth - 1, seen, text);
      if (item !== undefined) out[name] = item;
    }
    return out;
  } catch {
    return undefined; // a Proxy whose traps throw, say
  } finally {
    seen.delete(value);
  }
}

function read(target: object, name: string | number): unknown {
  try {
    return (target as Record<string | number, unknown>)[name];
  } catch {
    return undefined;
  }
}
