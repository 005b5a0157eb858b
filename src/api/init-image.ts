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

export async function loadInitImage(value: string, fetchFn: typeof fetch, field = 'init_image'): Promise<EncodedImage | ErrorResponse> {
  const what = field.replace(/_/g, ' ');
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
    response = await fetchFn(url);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return fieldError(field, `The ${what} could not be fetched (${reason}). Check the URL, your connection, and that the server allows cross-origin requests (CORS).`);
  }
  if (!response.ok) return fieldError(field, `The ${what} could not be fetched: the server answered HTTP ${response.status}.`);
  let bytes: ArrayBuffer;
  try {
    bytes = await response.arrayBuffer();
  } catch (e) {
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
