/**
 * Fetches the init image a request names: an http(s) URL, a data: URL, a blob: URL or raw base64.
 * Anything that is not an image comes back as the API's field error, never as an exception.
 */
import { fieldError, type ErrorResponse } from './responses.ts';

export interface EncodedImage {
  bytes: ArrayBuffer;
  mimeType: string;
}

/** Magic numbers of the formats browsers decode, for servers that send no or a wrong content-type. */
export function sniffImageType(b: Uint8Array): string | null {
  const starts = (...sig: number[]) => sig.every((x, i) => b[i] === x);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'image/webp';
  if (starts(0x42, 0x4d)) return 'image/bmp';
  if (b.length > 12 && b[4] === 0x66 && b[5] === 0x74 && b[6] === 0x79 && b[7] === 0x70) return 'image/avif';
  return null;
}

const RAW_BASE64 = /^[A-Za-z0-9+/\-_\s]+={0,2}$/;

/** How long an image URL may take, headers and body together, before the request gives up on it. */
export const IMAGE_FETCH_TIMEOUT_MS = 60_000;

export interface ImageFetchOptions {
  /** Aborting stops the download at once (a cancelled job); the answer is then a field error that says so. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Thrown where the caller's signal aborted the fetch, so a cancelled job is not reported as a bad image. */
export class ImageFetchAborted extends Error {
  override name = 'AbortError';
}

export async function loadInitImage(value: string, fetchFn: typeof fetch, field = 'init_image', options: ImageFetchOptions = {}): Promise<EncodedImage | ErrorResponse> {
  const what = field.replace(/_/g, ' ');
  const timeoutMs = options.timeoutMs ?? IMAGE_FETCH_TIMEOUT_MS;
  // A URL that never answers must not hold the queue: the timeout and the job's cancel both end it.
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
  try {
    return await fetchImage(value, fetchFn, field, what, signal);
  } catch (e) {
    if (options.signal?.aborted) throw new ImageFetchAborted(`The ${what} download was cancelled.`);
    if (timeout.signal.aborted) return fieldError(field, `The ${what} could not be fetched: no complete answer within ${Math.round(timeoutMs / 1000)} s.`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function fetchImage(value: string, fetchFn: typeof fetch, field: string, what: string, signal: AbortSignal): Promise<EncodedImage | ErrorResponse> {
  let url = value.trim();
  if (!/^(https?:|data:|blob:)/i.test(url)) {
    if (url.length < 16 || !RAW_BASE64.test(url)) {
      return fieldError(field, `The ${what} must be an http(s) URL, a data: URL, a blob: URL or base64 image data.`);
    }
    // URL-safe base64 (-, _) is the same data in another alphabet.
    url = `data:application/octet-stream;base64,${url.replace(/\s/g, '').replace(/-/g, '+').replace(/_/g, '/')}`;
  }
  let response: Response;
  try {
    response = await fetchFn(url, { signal });
  } catch (e) {
    if (signal.aborted) throw e;
    const reason = e instanceof Error ? e.message : String(e);
    return fieldError(field, `The ${what} could not be fetched (${reason}). Check the URL, your connection, and that the server allows cross-origin requests (CORS).`);
  }
  if (!response.ok) return fieldError(field, `The ${what} could not be fetched: the server answered HTTP ${response.status}.`);
  let bytes: ArrayBuffer;
  try {
    bytes = await response.arrayBuffer();
  } catch (e) {
    if (signal.aborted) throw e;
    return fieldError(field, `The ${what} could not be fetched: the download broke off (${e instanceof Error ? e.message : String(e)}).`);
  }
  const sniffed = sniffImageType(new Uint8Array(bytes, 0, Math.min(16, bytes.byteLength)));
  const declared = (response.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!sniffed) {
    const got = declared && !declared.startsWith('image/') ? ` (got ${declared})` : '';
    return fieldError(field, `The ${what} is not an image${got}.`);
  }
  return { bytes, mimeType: sniffed };
}
