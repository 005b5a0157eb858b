import { encode } from 'fast-png';
import { describe, expect, it, vi } from 'vitest';
import { loadInitImage, sniffImageType, type EncodedImage } from '../../src/api/init-image.ts';
import type { ErrorResponse } from '../../src/api/responses.ts';

/** A real 2x2 RGBA PNG, built here rather than committed as binary data. */
const PNG = encode({ width: 2, height: 2, channels: 4, data: new Uint8Array([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 128]) });
const PNG_BASE64 = Buffer.from(PNG).toString('base64');

const bytes = (...xs: number[]) => new Uint8Array([...xs, ...new Array<number>(16).fill(0)].slice(0, Math.max(16, xs.length)));
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** A fetch that answers every URL with `body` and records the URLs it was asked for. */
function fakeFetch(body: BodyInit | null, init: ResponseInit = {}) {
  return vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => new Response(body, init));
}

function expectImage(r: EncodedImage | ErrorResponse): EncodedImage {
  if ('status' in r) throw new Error(`expected an image, got ${JSON.stringify(r)}`);
  return r;
}

function expectFieldError(r: EncodedImage | ErrorResponse, field = 'init_image'): string {
  if (!('status' in r)) throw new Error(`expected an error, got an image of type ${r.mimeType}`);
  expect(r.status).toBe('error');
  expect(typeof r.message).toBe('object');
  const message = r.message as Record<string, string[]>;
  expect(Object.keys(message)).toEqual([field]);
  expect(message[field]).toHaveLength(1);
  return message[field][0];
}

describe('sniffImageType', () => {
  it.each([
    ['PNG', bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), 'image/png'],
    ['JPEG (JFIF)', bytes(0xff, 0xd8, 0xff, 0xe0), 'image/jpeg'],
    ['JPEG (Exif)', bytes(0xff, 0xd8, 0xff, 0xe1), 'image/jpeg'],
    ['GIF89a', bytes(...ascii('GIF89a')), 'image/gif'],
    ['GIF87a', bytes(...ascii('GIF87a')), 'image/gif'],
    ['WebP', bytes(...ascii('RIFF'), 0x24, 0, 0, 0, ...ascii('WEBPVP8 ')), 'image/webp'],
    ['BMP', bytes(...ascii('BM')), 'image/bmp'],
    ['AVIF', bytes(0, 0, 0, 0x20, ...ascii('ftypavif')), 'image/avif'],
  ])('%s', (_name, b, mime) => {
    expect(sniffImageType(b)).toBe(mime);
  });

  it('the PNG fast-png writes is a PNG', () => {
    expect(sniffImageType(PNG)).toBe('image/png');
  });

  it.each([
    ['a RIFF that is not WebP (WAVE)', bytes(...ascii('RIFF'), 0x24, 0, 0, 0, ...ascii('WAVEfmt '))],
    ['HTML', new TextEncoder().encode('<!doctype html><html>')],
    ['JSON', new TextEncoder().encode('{"error":"not found"}')],
    ['empty', new Uint8Array(0)],
    ['a truncated PNG signature', new Uint8Array([0x89, 0x50])],
  ])('%s is not an image', (_name, b) => {
    expect(sniffImageType(b)).toBeNull();
  });
});

describe('loadInitImage', () => {
  it('a data: URL of a PNG gives its bytes and image/png', async () => {
    const r = expectImage(await loadInitImage(`data:image/png;base64,${PNG_BASE64}`, fetch));
    expect(r.mimeType).toBe('image/png');
    expect(new Uint8Array(r.bytes)).toEqual(PNG);
  });

  it('the type comes from the bytes, not from what the data: URL declares', async () => {
    const r = expectImage(await loadInitImage(`data:application/octet-stream;base64,${PNG_BASE64}`, fetch));
    expect(r.mimeType).toBe('image/png');
  });

  it('raw base64 of a PNG is accepted', async () => {
    const r = expectImage(await loadInitImage(PNG_BASE64, fetch));
    expect(r.mimeType).toBe('image/png');
    expect(new Uint8Array(r.bytes)).toEqual(PNG);
  });

  it('raw base64 wrapped over lines (as base64 tools write it) and padded with spaces is accepted', async () => {
    const wrapped = `  ${PNG_BASE64.replace(/(.{20})/g, '$1\n')}\n`;
    const r = expectImage(await loadInitImage(wrapped, fetch));
    expect(new Uint8Array(r.bytes)).toEqual(PNG);
  });

  it('an https URL is fetched as given and its bytes sniffed', async () => {
    const f = fakeFetch(PNG.slice(), { headers: { 'content-type': 'application/octet-stream' } });
    const url = 'https://raw.githubusercontent.com/CompVis/stable-diffusion/main/data/inpainting_examples/overture-creations-5sI6fQgYIuo.png';
    const r = expectImage(await loadInitImage(url, f));
    expect(f).toHaveBeenCalledTimes(1);
    expect(f.mock.calls[0][0]).toBe(url);
    expect(r.mimeType).toBe('image/png');
    expect(new Uint8Array(r.bytes)).toEqual(PNG);
  });

  it.each([
    ['JPEG', [0xff, 0xd8, 0xff, 0xdb, 1, 2, 3], 'image/jpeg'],
    ['GIF', [...ascii('GIF89a'), 2, 0, 2, 0], 'image/gif'],
    ['WebP', [...ascii('RIFF'), 0x24, 0, 0, 0, ...ascii('WEBPVP8L'), 0, 0], 'image/webp'],
  ])('an http URL answering %s bytes gives %s', async (_name, body, mime) => {
    const f = fakeFetch(new Uint8Array(body), { headers: { 'content-type': 'image/whatever' } });
    expect(expectImage(await loadInitImage('http://example.com/x', f)).mimeType).toBe(mime);
  });

  it('a blob: URL is handed to fetch unchanged', async () => {
    const f = fakeFetch(PNG.slice(), { headers: { 'content-type': 'image/png' } });
    const url = 'blob:http://localhost:5173/0a1b2c3d-0000-4000-8000-000000000000';
    expectImage(await loadInitImage(url, f));
    expect(f.mock.calls[0][0]).toBe(url);
  });

  it('a fetch that rejects (network, CORS) is a field error that mentions CORS and the reason', async () => {
    const f = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const message = expectFieldError(await loadInitImage('https://example.com/cat.png', f));
    expect(message).toMatch(/could not be fetched/);
    expect(message).toMatch(/CORS/);
    expect(message).toContain('Failed to fetch');
  });

  it('a fetch that rejects with a non-Error still gives a field error', async () => {
    const f = vi.fn(async () => Promise.reject('offline'));
    expect(expectFieldError(await loadInitImage('https://example.com/cat.png', f))).toContain('offline');
  });

  it('HTTP 404 is a field error naming the status', async () => {
    const f = fakeFetch('Not Found', { status: 404, headers: { 'content-type': 'text/plain' } });
    expect(expectFieldError(await loadInitImage('https://example.com/missing.png', f))).toMatch(/HTTP 404/);
  });

  it('HTTP 500 is a field error too', async () => {
    const f = fakeFetch(PNG.slice(), { status: 500 });
    expect(expectFieldError(await loadInitImage('https://example.com/cat.png', f))).toMatch(/HTTP 500/);
  });

  it('an HTML page is "not an image" and says what came back', async () => {
    const f = fakeFetch('<!doctype html><title>Sign in</title>', { headers: { 'content-type': 'text/html; charset=utf-8' } });
    const message = expectFieldError(await loadInitImage('https://example.com/login', f));
    expect(message).toMatch(/is not an image/);
    expect(message).toContain('text/html');
  });

  it('non-image bytes labelled image/png are still "not an image"', async () => {
    const f = fakeFetch('definitely not a png', { headers: { 'content-type': 'image/png' } });
    expect(expectFieldError(await loadInitImage('https://example.com/fake.png', f))).toMatch(/is not an image\.$/);
  });

  it('an empty body is not an image', async () => {
    const f = fakeFetch(null, { status: 200 });
    expect(expectFieldError(await loadInitImage('https://example.com/empty', f))).toMatch(/is not an image/);
  });

  it('a data: URL of text is not an image', async () => {
    expect(expectFieldError(await loadInitImage('data:text/plain,hello%20world', fetch))).toMatch(/is not an image \(got text\/plain\)/);
  });

  it.each([
    'hello',
    'not an image at all!!!',
    'ftp://example.com/cat.png',
    'C:\\Users\\me\\cat.png',
    '/images/cat.png',
    '',
    '   ',
  ])('%j is a field error that says what is accepted', async (value) => {
    const f = vi.fn(fetch);
    const message = expectFieldError(await loadInitImage(value, f));
    expect(message).toMatch(/http\(s\) URL, a data: URL, a blob: URL or base64/);
    expect(f).not.toHaveBeenCalled();
  });

  it('base64-looking text that does not decode to an image is a field error', async () => {
    // 21 characters: valid base64 characters, but not valid base64 (length % 4 == 1).
    expectFieldError(await loadInitImage('thisisnotanimageatall', fetch));
    // 24 characters: decodes, but to bytes that are no image.
    expect(expectFieldError(await loadInitImage('dGhpcyBpcyBub3QgYW4gaW1n', fetch))).toMatch(/is not an image/);
  });

  it('the field name is used in the error key and message', async () => {
    const message = expectFieldError(await loadInitImage('hello', fetch, 'mask_image'), 'mask_image');
    expect(message).toMatch(/^The mask image /);
  });

  // A connection that drops while the body is read is still "a URL that cannot be fetched".
  it('a body that fails while being read is a field error, not an exception', async () => {
    const failingBody = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(PNG.slice(0, 8));
        controller.error(new TypeError('network connection was lost'));
      },
    });
    const f = fakeFetch(failingBody, { headers: { 'content-type': 'image/png' } });
    const r = await loadInitImage('https://example.com/cat.png', f);
    expect(expectFieldError(r)).toMatch(/could not be fetched/);
  });
});
