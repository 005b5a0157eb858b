/**
 * A stored result as a hosted-API request: the key is always empty (never the stored or the
 * user's key), a random seed becomes the seed actually used, the body passes the API's own
 * validation, and the curl command is a POSIX shell command that POSTs exactly that JSON.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { endpointOf, exportRequest, hostedUrl, reproducibleRequest, shellQuote } from '../../src/api/request-export.ts';
import { ENDPOINTS } from '../../src/api/endpoints.ts';
import { isErrorResponse, validateRequest } from '../../src/api/validate-request.ts';

const request = {
  key: 'sk-secret', prompt: "a cat's bench", negative_prompt: null, init_image: 'https://example.com/cat.png',
  width: '128', height: '128', samples: '1', num_inference_steps: '4', guidance_scale: 7.5, strength: 0.7,
  seed: null, safety_checker: 'no', enhance_prompt: 'no', webhook: null, track_id: null, model_id: 'tiny-sd',
};
const meta = { seed: 1234, init_image: 'https://example.com/cat.png', strength: 0.7, runtime: 'local' };

describe('exportRequest', () => {
  it('writes the key first and empty, never the stored one', () => {
    const out = exportRequest('img2img', request, meta);
    expect(Object.keys(out.body)[0]).toBe('key');
    expect(out.body.key).toBe('');
    expect(out.json).not.toContain('sk-secret');
    expect(out.curl).not.toContain('sk-secret');
  });

  it('fills a random seed with the seed used, and keeps a chosen one', () => {
    expect(exportRequest('img2img', request, meta).body.seed).toBe(1234);
    expect(exportRequest('img2img', { ...request, seed: '5' }, meta).body.seed).toBe('5');
    expect(reproducibleRequest({ prompt: 'p', seed: -1 }, { seed: 9 })).toEqual({ prompt: 'p', seed: 9 });
    expect(reproducibleRequest({ prompt: 'p' }, {})).toEqual({ prompt: 'p' });
  });

  it('passes the API validation', () => {
    const out = exportRequest('img2img', request, meta);
    const parsed = validateRequest('img2img', JSON.parse(out.json), ['tiny-sd']);
    expect(isErrorResponse(parsed)).toBe(false);
  });

  it('POSTs to the hosted v3 endpoint', () => {
    expect(exportRequest('text2img', { prompt: 'p' }).url).toBe('https://stablediffusionapi.com/api/v3/text2img');
    expect(exportRequest('inpaint', { prompt: 'p' }, {}, 'https://example.com/').url).toBe('https://example.com/api/v3/inpaint');
  });

  it("takes every call's path from the endpoint table, filling path fields instead of sending them twice", () => {
    for (const entry of ENDPOINTS) {
      if (/\{/.test(entry.path)) continue;
      expect(exportRequest(entry.name, {}).url, entry.name).toBe(`https://stablediffusionapi.com${entry.path}`);
    }
    expect(exportRequest('outpaint', { image: 'https://x/a.png' }).url).toBe('https://stablediffusionapi.com/api/v6/image_editing/outpaint');
    expect(hostedUrl('dreambooth', 'https://example.com')).toBe('https://example.com/api/v4/dreambooth');
    const status = exportRequest('fine_tune_status', { key: 'sk-secret', training_id: 'abc' });
    expect(status.url).toBe('https://stablediffusionapi.com/api/v3/fine_tune_status/abc');
    expect(status.body).toEqual({ key: '' });
    expect(hostedUrl('fine_tune_status')).toBe('https://stablediffusionapi.com/api/v3/fine_tune_status/{training_id}');
    expect(exportRequest('outpaint', { image: 'blob:http://localhost/x' }).warnings).toEqual([expect.stringContaining('image is a blob: URL')]);
  });

  it('makes a curl command whose shell words are the URL and the exact JSON', () => {
    const out = exportRequest('img2img', request, meta);
    expect(out.curl.startsWith("curl -X POST 'https://stablediffusionapi.com/api/v3/img2img'")).toBe(true);
    // Let a real shell split it: replace curl by printf to see the words it would get.
    const words = execFileSync('sh', ['-c', `${out.curl.replace(/^curl /, "printf '%s\\n' ")}`], { encoding: 'utf8' }).split('\n');
    expect(words).toContain('https://stablediffusionapi.com/api/v3/img2img');
    expect(words).toContain('Content-Type: application/json');
    const data = words[words.indexOf('--data-raw') + 1];
    expect(JSON.parse(data)).toEqual(out.body);
  });

  it('warns about blob: image URLs the hosted API cannot read', () => {
    const out = exportRequest('img2img', { ...request, init_image: 'blob:http://localhost/abc' }, meta);
    expect(out.warnings).toEqual([expect.stringContaining('init_image is a blob: URL')]);
    expect(exportRequest('img2img', request, meta).warnings).toEqual([]);
  });
});

describe('endpointOf', () => {
  it('reads the call from local meta, else from the request', () => {
    expect(endpointOf({ init_image: 'x' }, { runtime: 'local' })).toBe('text2img');
    expect(endpointOf({}, { init_image: 'x', runtime: 'local' })).toBe('img2img');
    expect(endpointOf({}, { init_image: 'x', mask_image: 'y' })).toBe('inpaint');
    expect(endpointOf({ init_image: 'x' }, {})).toBe('img2img');
    expect(endpointOf({ init_image: 'x', mask_image: 'y' }, {})).toBe('inpaint');
    expect(endpointOf({ prompt: 'p' }, {})).toBe('text2img');
  });
});

describe('shellQuote', () => {
  it('quotes single quotes the POSIX way', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
