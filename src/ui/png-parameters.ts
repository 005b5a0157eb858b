/**
 * Generation parameters as AUTOMATIC1111 writes them, and PNGs that carry them.
 *
 * A1111 stores one text per image under the PNG text keyword `parameters`:
 *   <prompt>
 *   Negative prompt: <negative prompt>          (only when there is one)
 *   Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: tiny-sd, Denoising strength: 0.7
 * Fields without a value are left out, a value holding ',', ':' or a newline is JSON-quoted, and
 * the whole text is trimmed (A1111's create_infotext). Tools that read it (A1111's "PNG Info",
 * Civitai, ComfyUI loaders) parse exactly this layout, so the order and spelling matter.
 *
 * Like Pillow's PngInfo.add_text, which A1111 uses, the text goes into a tEXt chunk when it is
 * Latin-1 and into an uncompressed iTXt chunk (UTF-8) when it is not. DOM-free.
 */
import { resolveSchedulerAlias } from '../api/scheduler-aliases.ts';

/** The API scheduler names that have an A1111 sampler name (the inverse of scheduler-aliases.ts). */
const SAMPLER_NAMES: Record<string, string> = {
  EulerDiscreteScheduler: 'Euler',
  EulerAncestralDiscreteScheduler: 'Euler a',
  LMSDiscreteScheduler: 'LMS',
  HeunDiscreteScheduler: 'Heun',
  KDPM2DiscreteScheduler: 'DPM2',
  KDPM2AncestralDiscreteScheduler: 'DPM2 a',
  DPMSolverSinglestepScheduler: 'DPM++ SDE',
  DDIMScheduler: 'DDIM',
  PNDMScheduler: 'PLMS',
  UniPCMultistepScheduler: 'UniPC',
  LCMScheduler: 'LCM',
};

/** DPMSolverMultistep is two A1111 samplers, told apart by its algorithm (diffusers' default is dpmsolver++). */
const MULTISTEP_NAMES: Record<string, string> = {
  'dpmsolver++': 'DPM++ 2M',
  'sde-dpmsolver++': 'DPM++ 2M SDE',
};

/**
 * The A1111 sampler name for the scheduler that ran (meta.scheduler) with the request's modifiers;
 * the API name itself when A1111 has none; undefined when nothing is known.
 */
export function samplerName(scheduler: unknown, request: Record<string, unknown> = {}): string | undefined {
  const requested = typeof request.scheduler === 'string' ? resolveSchedulerAlias(request.scheduler) : null;
  const name = typeof scheduler === 'string' && scheduler ? scheduler : requested?.scheduler;
  if (!name) return undefined;
  // The request's own modifiers win over what an A1111 name in `scheduler` implies (as in validation).
  const karras = flag(request.use_karras_sigmas) ?? requested?.use_karras_sigmas ?? false;
  const algorithm = typeof request.algorithm_type === 'string' && request.algorithm_type ? request.algorithm_type : requested?.algorithm_type;
  const base = name === 'DPMSolverMultistepScheduler' ? MULTISTEP_NAMES[algorithm ?? 'dpmsolver++'] : SAMPLER_NAMES[name];
  if (!base) return name;
  return karras ? `${base} Karras` : base;
}

/** A1111's `quote`: values that would break the "key: value, ..." list are written as JSON strings. */
function quote(value: string | number): string {
  const s = String(value);
  return /[,:\n]/.test(s) ? JSON.stringify(s) : s;
}

function flag(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'yes' || s === 'true') return true;
    if (s === 'no' || s === 'false') return false;
  }
  return undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
const num = (v: unknown): number | undefined => {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
};

/**
 * The A1111 `parameters` text of image `index` of a result: the prompt and seed actually used
 * (meta.prompt after enhance_prompt, meta.seeds[index]) and the request's values where meta has none.
 */
export function a1111Parameters(request: Record<string, unknown>, meta: Record<string, unknown>, index = 0): string {
  const seeds = Array.isArray(meta.seeds) ? meta.seeds : [];
  const width = num(meta.W) ?? num(request.width);
  const height = num(meta.H) ?? num(request.height);
  const fields: [string, string | number | undefined][] = [
    ['Steps', num(meta.steps) ?? num(request.num_inference_steps)],
    ['Sampler', samplerName(meta.scheduler, request)],
    ['CFG scale', num(meta.guidance_scale) ?? num(request.guidance_scale)],
    ['Seed', num(seeds[index]) ?? num(meta.seed) ?? num(request.seed)],
    ['Size', width !== undefined && height !== undefined ? `${width}x${height}` : undefined],
    ['Model', text(meta.model) ?? text(request.model_id)],
    // Only img2img and inpaint report a strength; text2img has none in A1111 either.
    ['Denoising strength', num(meta.strength)],
  ];
  const list = fields.filter((f): f is [string, string | number] => f[1] !== undefined).map(([k, v]) => `${k}: ${quote(v)}`).join(', ');
  const prompt = text(meta.prompt) ?? text(request.prompt) ?? '';
  const negative = text(meta.negative_prompt) ?? text(request.negative_prompt);
  return `${prompt}${negative ? `\nNegative prompt: ${negative}` : ''}\n${list}`.trim();
}

// ---------------------------------------------------------------------------------------------
// PNG text chunks

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const TEXT_TYPES = new Set(['tEXt', 'iTXt', 'zTXt']);

interface Chunk {
  type: string;
  /** The whole chunk: length, type, data and CRC. */
  start: number;
  end: number;
  dataStart: number;
  dataEnd: number;
}

function chunks(png: Uint8Array): Chunk[] {
  if (png.length < 8 || SIGNATURE.some((b, i) => png[i] !== b)) throw new Error('not a PNG file');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  let at = 8;
  while (at + 12 <= png.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (end > png.length) throw new Error(`the PNG chunk ${type} runs past the end of the file`);
    out.push({ type, start: at, end, dataStart: at + 8, dataEnd: at + 8 + length });
    at = end;
    if (type === 'IEND') break;
  }
  if (!out.length || out[0].type !== 'IHDR' || out[out.length - 1].type !== 'IEND') throw new Error('the PNG file is incomplete');
  return out;
}

let crcTable: Uint32Array | null = null;
function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function isLatin1(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\u0000-\u00ff]*$/.test(s);
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function buildChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(latin1Bytes(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A tEXt chunk for Latin-1 text, else an uncompressed iTXt chunk (what Pillow's add_text writes). */
export function textChunk(keyword: string, value: string): Uint8Array {
  if (!/^[\u0020-\u007e\u00a1-\u00ff]{1,79}$/.test(keyword) || /^ | $| {2}/.test(keyword)) throw new Error(`invalid PNG text keyword: ${keyword}`);
  const key = latin1Bytes(keyword);
  if (isLatin1(value) && !value.includes('\0')) {
    const body = latin1Bytes(value);
    const data = new Uint8Array(key.length + 1 + body.length);
    data.set(key);
    data.set(body, key.length + 1);
    return buildChunk('tEXt', data);
  }
  // keyword \0, compression flag 0, method 0, empty language tag \0, empty translated keyword \0, UTF-8 text
  const body = new TextEncoder().encode(value);
  const data = new Uint8Array(key.length + 5 + body.length);
  data.set(key);
  data.set(body, key.length + 5);
  return buildChunk('iTXt', data);
}

/**
 * The PNG with `value` stored under `keyword` (default `parameters`): the image data is copied
 * untouched (no re-encoding), any earlier text under the same keyword is dropped, and the new
 * chunk goes before the image data, where Pillow puts it.
 */
export function withPngText(png: Uint8Array, value: string, keyword = 'parameters'): Uint8Array {
  const list = chunks(png);
  const kept = list.filter((c) => !(TEXT_TYPES.has(c.type) && chunkKeyword(png, c) === keyword));
  const chunk = textChunk(keyword, value);
  const before = kept.findIndex((c) => c.type === 'IDAT' || c.type === 'IEND');
  const parts: Uint8Array[] = [png.subarray(0, 8)];
  kept.forEach((c, i) => {
    if (i === before) parts.push(chunk);
    parts.push(png.subarray(c.start, c.end));
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function chunkKeyword(png: Uint8Array, c: Chunk): string {
  const data = png.subarray(c.dataStart, c.dataEnd);
  const nul = data.indexOf(0);
  return latin1String(data.subarray(0, nul < 0 ? data.length : nul));
}

/** Byte n is U+00nn. (TextDecoder's 'latin1' is really windows-1252, which differs at 0x80-0x9f.) */
function latin1String(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x2000) s += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  return s;
}

/** The PNG's tEXt and uncompressed iTXt texts by keyword (compressed ones are skipped). */
export function readPngText(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of chunks(png)) {
    if (c.type !== 'tEXt' && c.type !== 'iTXt') continue;
    const data = png.subarray(c.dataStart, c.dataEnd);
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const keyword = latin1String(data.subarray(0, nul));
    if (c.type === 'tEXt') {
      out[keyword] = latin1String(data.subarray(nul + 1));
      continue;
    }
    if (data[nul + 1] !== 0) continue;
    // Skip the language tag and the translated keyword, each NUL-terminated.
    const lang = data.indexOf(0, nul + 3);
    const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
    if (translated < 0) continue;
    out[keyword] = new TextDecoder().decode(data.subarray(translated + 1));
  }
  return out;
}
