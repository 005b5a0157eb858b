/** Reading the hub's statements about a file from response headers. */
import { describe, expect, it } from 'vitest';
import { huggingFaceFacts, isHuggingFaceUrl, parseContentRange, serverFacts, sha256FromEtag, unsatisfiedRangeTotal } from '../../src/models/hub-metadata.ts';

const SHA = 'b1b7164a1884981e2256e78fe916ea58b19b1d5c1a600b2ca2420ff16c840387';

describe('hub metadata', () => {
  it('takes a sha256 from quoted, weak and bare entity tags, nothing else', () => {
    expect(sha256FromEtag(`"${SHA}"`)).toBe(SHA);
    expect(sha256FromEtag(`W/"${SHA.toUpperCase()}"`)).toBe(SHA);
    expect(sha256FromEtag(SHA)).toBe(SHA);
    expect(sha256FromEtag('"5d41402abc4b2a76b9719d911017c592"')).toBeNull(); // md5 / git sha1 etags
    expect(sha256FromEtag('W/"12ab-18f3c"')).toBeNull();
    expect(sha256FromEtag(null)).toBeNull();
  });

  it('parses Content-Range', () => {
    expect(parseContentRange('bytes 131072-299999/300000')).toEqual({ start: 131072, end: 299999, total: 300000 });
    expect(parseContentRange('bytes 0-9/*')).toEqual({ start: 0, end: 9, total: null });
    expect(parseContentRange('bytes */300000')).toBeNull();
    expect(unsatisfiedRangeTotal('bytes */300000')).toBe(300000);
    expect(parseContentRange(null)).toBeNull();
  });

  it('prefers X-Linked-Size / X-Linked-Etag, then Content-Range, Content-Length and ETag', () => {
    const linked = new Response(null, { status: 200, headers: { 'x-linked-size': '1730000000', 'x-linked-etag': `"${SHA}"`, 'content-length': '0', etag: 'W/"abc"' } });
    expect(serverFacts(linked)).toEqual({ size: 1730000000, sha256: SHA });
    const partial = new Response('x', { status: 206, headers: { 'content-range': 'bytes 5-5/300000', 'content-length': '1', etag: `"${SHA}"` } });
    expect(serverFacts(partial)).toEqual({ size: 300000, sha256: SHA });
    const plain = new Response('x', { status: 200, headers: { 'content-length': '1', etag: '"not-a-hash"' } });
    expect(serverFacts(plain)).toEqual({ size: 1, sha256: null });
    const gzipped = new Response('x', { status: 200, headers: { 'content-length': '1', 'content-encoding': 'gzip' } });
    expect(serverFacts(gzipped).size).toBeNull();
  });
});

describe('Hugging Face URLs', () => {
  const SHA_HF = 'b'.repeat(64);
  const url = 'https://huggingface.co/owner/repo/resolve/main/unet/model.onnx';

  it('do not take the CDN ETag for a sha256, only X-Linked-Etag', () => {
    const cdn = new Response('x', { status: 200, headers: { 'content-length': '1', etag: `"${SHA_HF}"` } });
    expect(serverFacts(cdn, url).sha256).toBeNull();
    expect(serverFacts(cdn, 'http://127.0.0.1:4397/test/x/resolve/main/a.bin').sha256).toBe(SHA_HF);
    expect(isHuggingFaceUrl(url)).toBe(true);
  });

  it('read size and sha256 from the tree API, one request per folder', async () => {
    const asked: string[] = [];
    const fetchFn = (async (input: RequestInfo | URL) => {
      asked.push(String(input));
      return new Response(JSON.stringify([
        { type: 'file', path: 'unet/model.onnx', size: 135, lfs: { oid: SHA_HF, size: 1730000000, pointerSize: 135 } },
        { type: 'file', path: 'unet/config.json', size: 900 },
      ]));
    }) as typeof fetch;
    const cache = new Map<string, Promise<unknown>>();
    expect(await huggingFaceFacts(url, fetchFn, cache)).toEqual({ size: 1730000000, sha256: SHA_HF });
    expect(await huggingFaceFacts(url.replace('model.onnx', 'config.json'), fetchFn, cache)).toEqual({ size: 900, sha256: null });
    expect(asked).toEqual(['https://huggingface.co/api/models/owner/repo/tree/main/unet']);
    expect(await huggingFaceFacts('http://127.0.0.1/x/resolve/main/a', fetchFn)).toBeNull();
  });
});
