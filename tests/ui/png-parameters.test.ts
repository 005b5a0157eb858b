/**
 * The A1111 `parameters` text and the PNG text chunk that carries it. The layout (field order,
 * "Negative prompt:" line, JSON quoting of values holding ',' ':' or a newline) is AUTOMATIC1111's
 * create_infotext; the parse below follows its parse_generation_parameters (the same regex), so a
 * text that round-trips here reads back the same in A1111's "PNG Info" tab.
 */
import { crc32 } from 'node:zlib';
import { decode, encode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { a1111Parameters, readPngText, samplerName, textChunk, withPngText } from '../../src/ui/png-parameters.ts';

/** A1111's parse_generation_parameters, reduced to prompt, negative prompt and the key/value list. */
function parseA1111(text: string): { prompt: string; negative: string; params: Record<string, string> } {
  const reParam = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
  const lines = text.trim().split('\n');
  let last = lines[lines.length - 1];
  const params: Record<string, string> = {};
  if ([...last.matchAll(reParam)].length < 3) last = '';
  else lines.pop();
  let prompt = '';
  let negative = '';
  let inNegative = false;
  for (const [i, raw] of lines.entries()) {
    let line = raw.trim();
    if (line.startsWith('Negative prompt:')) {
      inNegative = true;
      line = line.slice('Negative prompt:'.length).trim();
    }
    if (inNegative) negative += (negative ? '\n' : '') + line;
    else prompt += (i > 0 ? '\n' : '') + line;
  }
  for (const [, k, v] of last.matchAll(reParam)) params[k] = v.startsWith('"') && v.endsWith('"') ? JSON.parse(v) : v;
  return { prompt, negative, params };
}

const img2imgMeta = {
  H: 512, W: 512, guidance_scale: 7.5, model: 'tiny-sd', n_samples: 1, negative_prompt: 'blurry',
  prompt: 'a cat sitting on a bench', seed: 42, seeds: [42], steps: 30, scheduler: 'EulerAncestralDiscreteScheduler',
  strength: 0.7, init_image: 'https://example.com/cat.png', runtime: 'local',
};

describe('a1111Parameters', () => {
  it('writes the A1111 layout for an img2img result', () => {
    expect(a1111Parameters({ prompt: 'a cat sitting on a bench' }, img2imgMeta)).toBe(
      'a cat sitting on a bench\nNegative prompt: blurry\n'
      + 'Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: tiny-sd, Denoising strength: 0.7',
    );
  });

  it('leaves out the negative prompt line and the strength for text2img', () => {
    const meta = { ...img2imgMeta, negative_prompt: '', strength: undefined, init_image: undefined, W: 64, H: 96, steps: 4, guidance_scale: 7, seed: 5, seeds: [5] };
    expect(a1111Parameters({ prompt: 'x' }, meta)).toBe(
      'a cat sitting on a bench\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x96, Model: tiny-sd',
    );
  });

  it('uses each image its own seed, and the prompt actually used (after enhance_prompt)', () => {
    const meta = { ...img2imgMeta, prompt: 'a cat, highly detailed', seed: 7, seeds: [7, 8] };
    const second = parseA1111(a1111Parameters({ prompt: 'a cat', enhance_prompt: 'yes' }, meta, 1));
    expect(second.params.Seed).toBe('8');
    expect(second.prompt).toBe('a cat, highly detailed');
  });

  it('falls back to the request where meta has no value', () => {
    const text = a1111Parameters({ prompt: 'p', num_inference_steps: '12', guidance_scale: 6, seed: '9', width: '128', height: '64', model_id: 'm' }, {});
    expect(text).toBe('p\nSteps: 12, CFG scale: 6, Seed: 9, Size: 128x64, Model: m');
  });

  it('JSON-quotes values holding a comma, colon or newline, and A1111 parses them back', () => {
    const text = a1111Parameters({}, { ...img2imgMeta, model: 'org/model: v1, fp16', prompt: 'a, b: c\nsecond line' });
    expect(text).toContain('Model: "org/model: v1, fp16"');
    const parsed = parseA1111(text);
    expect(parsed.params.Model).toBe('org/model: v1, fp16');
    expect(parsed.prompt).toBe('a, b: c\nsecond line');
    expect(parsed.negative).toBe('blurry');
    expect(parsed.params).toEqual({
      Steps: '30', Sampler: 'Euler a', 'CFG scale': '7.5', Seed: '42', Size: '512x512', Model: 'org/model: v1, fp16', 'Denoising strength': '0.7',
    });
  });
});

describe('samplerName', () => {
  it('maps the API scheduler names onto the A1111 sampler names', () => {
    expect(samplerName('EulerDiscreteScheduler')).toBe('Euler');
    expect(samplerName('PNDMScheduler')).toBe('PLMS');
    expect(samplerName('KDPM2AncestralDiscreteScheduler')).toBe('DPM2 a');
    expect(samplerName('DPMSolverMultistepScheduler')).toBe('DPM++ 2M');
    expect(samplerName('DPMSolverMultistepScheduler', { algorithm_type: 'sde-dpmsolver++' })).toBe('DPM++ 2M SDE');
  });

  it('adds Karras for karras sigmas, from the flag or from an A1111 name in the request', () => {
    expect(samplerName('DPMSolverMultistepScheduler', { use_karras_sigmas: 'yes' })).toBe('DPM++ 2M Karras');
    expect(samplerName('DPMSolverMultistepScheduler', { scheduler: 'DPM++ 2M SDE Karras' })).toBe('DPM++ 2M SDE Karras');
    // The request's own flag wins over what the name implies.
    expect(samplerName('DPMSolverMultistepScheduler', { scheduler: 'DPM++ 2M Karras', use_karras_sigmas: 'no' })).toBe('DPM++ 2M');
  });

  it('keeps API names A1111 has no name for, and says nothing when nothing is known', () => {
    expect(samplerName('DDPMScheduler')).toBe('DDPMScheduler');
    expect(samplerName('DPMSolverMultistepScheduler', { algorithm_type: 'dpmsolver' })).toBe('DPMSolverMultistepScheduler');
    expect(samplerName(undefined)).toBeUndefined();
  });
});

function samplePng(): Uint8Array {
  const data = new Uint8Array(4 * 3 * 3).map((_, i) => (i * 37) % 256);
  return encode({ width: 4, height: 3, data, channels: 3, depth: 8 });
}

/** The chunk types of a PNG, in order. */
function chunkTypes(png: Uint8Array): string[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const types: string[] = [];
  for (let at = 8; at < png.length;) {
    const length = view.getUint32(at);
    types.push(String.fromCharCode(...png.subarray(at + 4, at + 8)));
    at += 12 + length;
  }
  return types;
}

describe('withPngText', () => {
  const parameters = a1111Parameters({}, img2imgMeta);

  it('adds a tEXt chunk fast-png reads back (CRC checked), before the image data, pixels untouched', () => {
    const png = samplePng();
    const out = withPngText(png, parameters);
    const decoded = decode(out, { checkCrc: true });
    expect(decoded.text).toEqual({ parameters });
    expect(decoded.data).toEqual(decode(png).data);
    expect(chunkTypes(out)).toEqual(['IHDR', 'tEXt', 'IDAT', 'IEND']);
    expect(readPngText(out)).toEqual({ parameters });
  });

  it('replaces an earlier parameters text and keeps other texts', () => {
    const png = encode({ ...decode(samplePng()), text: { parameters: 'old', Software: 'test' } } as Parameters<typeof encode>[0]);
    const out = withPngText(png, parameters);
    expect(decode(out, { checkCrc: true }).text).toEqual({ parameters, Software: 'test' });
  });

  it('writes non-Latin-1 text as UTF-8 in an uncompressed iTXt chunk, as Pillow does', () => {
    const text = 'un chat 猫 sur un banc 🐱\nSteps: 2';
    const out = withPngText(samplePng(), text);
    expect(chunkTypes(out)).toEqual(['IHDR', 'iTXt', 'IDAT', 'IEND']);
    expect(readPngText(out)).toEqual({ parameters: text });
    decode(out, { checkCrc: true });
  });

  it('writes chunks whose CRC matches zlib', () => {
    const chunk = textChunk('parameters', 'é\nSteps: 1');
    const view = new DataView(chunk.buffer);
    const length = view.getUint32(0);
    expect(String.fromCharCode(...chunk.subarray(4, 8))).toBe('tEXt');
    expect(Array.from(chunk.subarray(8, 8 + length))).toEqual([...Buffer.from('parameters\0é\nSteps: 1', 'latin1')]);
    expect(view.getUint32(8 + length)).toBe(crc32(chunk.subarray(4, 8 + length)));
  });

  it('refuses what is not a PNG', () => {
    expect(() => withPngText(new Uint8Array([1, 2, 3]), 'x')).toThrow(/not a PNG/);
  });
});
