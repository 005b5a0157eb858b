/**
 * What the API layer stores and posts is plain JSON with no API key at any depth: the copy never
 * throws on hostile values, and a hosted answer that echoes the key (nested, or inside a string)
 * loses it before anything else sees the answer.
 */
import { describe, expect, it } from 'vitest';
import { plainResponse, toPlainJson } from '../../src/api/plain-json.ts';
import { readHostedAnswer } from '../../src/api/remote-responses.ts';

describe('toPlainJson', () => {
  it('keeps JSON values and turns the rest into JSON or leaves it out', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const throwing = Object.defineProperty({ ok: 1 }, 'bad', { enumerable: true, get: () => { throw new Error('x'); } });
    const hostile = new Proxy({}, { ownKeys: () => { throw new Error('trap'); } });
    expect(toPlainJson({
      s: 's', n: 1.5, b: false, z: null, big: 12345678901234567890n, nan: NaN, inf: -Infinity,
      fn: () => 1, sym: Symbol('x'), u: undefined, date: new Date(0), bytes: new Uint8Array(3),
      arr: [1, () => 2, undefined, 3n], cyclic, throwing, hostile,
    })).toEqual({
      s: 's', n: 1.5, b: false, z: null, big: '12345678901234567890', nan: null, inf: null,
      date: '1970-01-01T00:00:00.000Z', arr: [1, null, null, '3'], cyclic: { a: 1 }, throwing: { ok: 1 },
    });
    // The same object twice, not in a cycle, is copied both times.
    const shared = { x: 1 };
    expect(toPlainJson({ a: shared, b: shared })).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });

  it('drops every `key` field at any depth, and redacts the secret inside strings', () => {
    const out = toPlainJson({ key: 'k-123456', meta: { key: 'k-123456', deeper: [{ key: 'k-123456', note: 'your key k-123456 was used' }] } }, { redact: 'k-123456' });
    expect(out).toEqual({ meta: { deeper: [{ note: 'your key *** was used' }] } });
  });

  it('plainResponse turns inline images in meta into references, once', () => {
    const data = `data:image/png;base64,${'A'.repeat(5000)}`;
    const r = plainResponse({ status: 'success', meta: { init_image: data, mask_image: 'https://x.test/m.png' } });
    expect(r.meta).toEqual({ init_image: 'inline image (image/png, 4.9 K characters as sent; not repeated)', mask_image: 'https://x.test/m.png' });
    expect(plainResponse(r)).toEqual(r);
  });
});

describe('hosted answers', () => {
  it('a key the hosted API echoes inside meta, nested or in text, never comes back to the caller', () => {
    const key = 'sk-live-secret';
    const answer = readHostedAnswer({
      status: 'success', output: ['https://cdn.test/1.png'], id: 9,
      meta: { prompt: 'a cat', key, request: { key, inner: { key } }, debug: `called with key=${key}` },
      key,
    }, key);
    const text = JSON.stringify(answer);
    expect(text).not.toContain(key);
    expect(text).not.toContain('"key"');
    expect(answer).toMatchObject({ status: 'success', meta: { prompt: 'a cat', runtime: 'remote', request: { inner: {} }, debug: 'called with key=***' } });
  });
});
