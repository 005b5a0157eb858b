// The tiny model sets of tools/generate-tiny-models.ts, checked the way the app will use them:
// onnxruntime-node (CPU) loads and runs every model, the analytic ones give the numbers their
// formulas promise, and the generator is byte-for-byte deterministic.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModels, MANIFEST_NAME, type Manifest } from '../../tools/generate-tiny-models.ts';
import { GraphBuilder } from '../../tools/onnx/graph.ts';
import { WEBGPU_OPS } from '../../tools/onnx/ops.ts';
import { nodeWebgpuUnavailableReason } from '../../tools/node-webgpu.ts';
import { DType, onnx } from '../../tools/onnx/proto.ts';
import { sd15AlphasCumprod } from '../../tools/tiny-models/schedule.ts';
import { bpe, bytesToUnicode, PROMPT_WORDS, wordSymbols } from '../../tools/tiny-models/tokenizer.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLIP_VOCAB = path.resolve(HERE, '../../../shared/fixtures/clip-tokenizer/vocab.json');

const SETS = ['tiny-sd', 'tiny-sd-analytic', 'tiny-sd-fp16io', 'tiny-sd-inpaint'];
const MODELS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];
const SF = 0.18215;
const D = 32;

// torch 1.13: torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32)**2, 0)
const TORCH_ALPHAS_CUMPROD: Record<number, number> = {
  0: 0.9991499781608582,
  1: 0.9982960224151611,
  500: 0.2763324975967407,
  999: 0.0046600960195064545,
};

const WEBGPU_UNAVAILABLE = await nodeWebgpuUnavailableReason();
if (WEBGPU_UNAVAILABLE) console.info(`tiny-models: WebGPU EP test skipped, no adapter: ${WEBGPU_UNAVAILABLE}`);

let dirA = '';
let dirB = '';
let manifest: Manifest;
let generateMs = 0;
const sessions = new Map<string, ort.InferenceSession>();

async function session(set: string, model: string): Promise<ort.InferenceSession> {
  const file = path.join(dirA, set, model, 'model.onnx');
  let s = sessions.get(file);
  if (!s) {
    s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    sessions.set(file, s);
  }
  return s;
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** Deterministic N(0,1)-ish samples (Irwin-Hall of 12 LCG uniforms): test inputs only. */
function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let u = 0;
    for (let k = 0; k < 12; k++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      u += s / 4294967296;
    }
    out[i] = u - 6;
  }
  return out;
}

function uniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  return randn(n, seed).map((v) => lo + ((Math.tanh(v) + 1) / 2) * (hi - lo));
}

function std(a: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < a.length; i++) mean += a[i];
  mean /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - mean) ** 2;
  return Math.sqrt(v / a.length);
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

// IEEE half precision, enough for feeding and reading the fp16io models (round to nearest even).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}
function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
const halfTensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float16', Uint16Array.from(data, toHalf), dims);
const halfData = (t: ort.Tensor) => Float32Array.from(t.data as Uint16Array, fromHalf);

/** Float data of an output, whatever its float type. */
function floats(t: ort.Tensor): Float32Array {
  return t.type === 'float16' ? halfData(t) : (t.data as Float32Array);
}

let vocab: Record<string, number> = {};
function promptIds(words: string[], batch = 1, seq = 77): Int32Array {
  const start = vocab['<|startoftext|>'];
  const end = vocab['<|endoftext|>'];
  const one = new Int32Array(seq).fill(end);
  one[0] = start;
  words.forEach((w, i) => {
    one[i + 1] = vocab[`${w}</w>`];
  });
  const out = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) out.set(one, b * seq);
  return out;
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

beforeAll(async () => {
  dirA = await mkdtemp(path.join(tmpdir(), 'tiny-models-a-'));
  dirB = await mkdtemp(path.join(tmpdir(), 'tiny-models-b-'));
  const started = performance.now();
  manifest = await generateTinyModels(dirA);
  generateMs = performance.now() - started;
  vocab = await readJson(path.join(dirA, 'tiny-sd/tokenizer/vocab.json'));
});

afterAll(async () => {
  for (const s of sessions.values()) await s.release();
  await rm(dirA, { recursive: true, force: true });
  await rm(dirB, { recursive: true, force: true });
});

describe('generation', () => {
  it('is fast and byte-for-byte deterministic', async () => {
    console.log(`generated ${SETS.length} sets in ${generateMs.toFixed(0)} ms`);
    expect(generateMs).toBeLessThan(10_000);
    const again = await generateTinyModels(dirB);
    expect(again).toEqual(manifest);
    const filesA = await listFiles(dirA);
    expect(await listFiles(dirB)).toEqual(filesA);
    for (const rel of filesA) {
      const [a, b] = await Promise.all([readFile(path.join(dirA, rel)), readFile(path.join(dirB, rel))]);
      expect(a.equals(b), rel).toBe(true);
    }
  });

  it('writes models.json listing every file of each set with its size and sha256', async () => {
    expect(await readJson(path.join(dirA, MANIFEST_NAME))).toEqual(manifest);
    expect(Object.keys(manifest)).toEqual(SETS);
    for (const set of SETS) {
      const listed = manifest[set].files.map((f) => f.path);
      expect(await listFiles(path.join(dirA, set))).toEqual([...listed].sort());
      for (const f of manifest[set].files) {
        const bytes = await readFile(path.join(dirA, set, f.path));
        expect(bytes.length, f.path).toBe(f.size);
        expect(createHash('sha256').update(bytes).digest('hex'), f.path).toBe(f.sha256);
      }
      const total = manifest[set].files.reduce((s, f) => s + f.size, 0);
      console.log(`${set}: ${manifest[set].files.length} files, ${(total / 1024).toFixed(1)} KiB`);
      expect(total).toBeLessThan(8 * 1024 * 1024);
    }
  });

  it('has the diffusers layout and configs', async () => {
    for (const set of SETS) {
      const dir = path.join(dirA, set);
      const index = await readJson<Record<string, unknown>>(path.join(dir, 'model_index.json'));
      expect(index._class_name).toBe(set === 'tiny-sd-inpaint' ? 'StableDiffusionInpaintPipeline' : 'StableDiffusionPipeline');
      expect(index.text_encoder).toEqual(['transformers', 'CLIPTextModel']);
      expect(index.tokenizer).toEqual(['transformers', 'CLIPTokenizer']);
      expect(index.unet).toEqual(['diffusers', 'UNet2DConditionModel']);
      expect(index.scheduler).toEqual(['diffusers', 'EulerDiscreteScheduler']);
      const hasChecker = set === 'tiny-sd';
      expect(index.safety_checker).toEqual(hasChecker ? ['stable_diffusion', 'StableDiffusionSafetyChecker'] : [null, null]);
      expect(existsSync(path.join(dir, 'safety_checker/model.onnx'))).toBe(hasChecker);

      expect(await readJson(path.join(dir, 'scheduler/scheduler_config.json'))).toEqual({
        _class_name: 'EulerDiscreteScheduler',
        _diffusers_version: '0.27.0',
        num_train_timesteps: 1000,
        beta_start: 0.00085,
        beta_end: 0.012,
        beta_schedule: 'scaled_linear',
        steps_offset: 1,
        timestep_spacing: 'leading',
        prediction_type: 'epsilon',
        set_alpha_to_one: false,
        skip_prk_steps: true,
        clip_sample: false,
        trained_betas: null,
      });
      const text = await readJson<Record<string, unknown>>(path.join(dir, 'text_encoder/config.json'));
      expect(text).toMatchObject({ hidden_size: D, max_position_embeddings: 77, vocab_size: Object.keys(vocab).length });
      const unet = await readJson<Record<string, unknown>>(path.join(dir, 'unet/config.json'));
      expect(unet).toMatchObject({ in_channels: set === 'tiny-sd-inpaint' ? 9 : 4, out_channels: 4, cross_attention_dim: D });
      expect(typeof unet.sample_size).toBe('number');
      for (const vae of ['vae_encoder', 'vae_decoder']) {
        expect(await readJson(path.join(dir, vae, 'config.json'))).toMatchObject({ scaling_factor: SF, latent_channels: 4 });
      }
      const tokConfig = await readJson<Record<string, unknown>>(path.join(dir, 'tokenizer/tokenizer_config.json'));
      expect(tokConfig.model_max_length).toBe(77);
      expect(await readJson(path.join(dir, 'tokenizer/special_tokens_map.json'))).toMatchObject({ eos_token: '<|endoftext|>' });
    }
  });

  it('uses only WebGPU ops, opset 17', async () => {
    const opsBySet: Record<string, string[]> = {};
    for (const set of SETS) {
      const used = new Set<string>();
      for (const f of manifest[set].files.filter((x) => x.path.endsWith('.onnx'))) {
        const model = onnx.ModelProto.decode(await readFile(path.join(dirA, set, f.path)));
        expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
        for (const node of model.graph?.node ?? []) {
          const opType = node.opType ?? '';
          expect(WEBGPU_OPS.has(opType), `${set}/${f.path}: ${opType}`).toBe(true);
          used.add(opType);
        }
      }
      opsBySet[set] = [...used].sort();
    }
    console.log('ops used:', JSON.stringify(opsBySet));
  });
});

describe('tokenizer', () => {
  it('has CLIP layout: bytes, bytes</w>, merges, then start/end as the last ids', async () => {
    const byteSymbols = [...bytesToUnicode().values()];
    const ids = Object.entries(vocab).sort((a, b) => a[1] - b[1]);
    expect(ids.map(([, id]) => id)).toEqual(ids.map((_, i) => i));
    expect(ids.slice(0, 256).map(([t]) => t)).toEqual(byteSymbols);
    expect(ids.slice(256, 512).map(([t]) => t)).toEqual(byteSymbols.map((s) => `${s}</w>`));
    expect(ids.slice(-2).map(([t]) => t)).toEqual(['<|startoftext|>', '<|endoftext|>']);

    const mergesFile = await readFile(path.join(dirA, 'tiny-sd/tokenizer/merges.txt'), 'utf8');
    const lines = mergesFile.trimEnd().split('\n');
    expect(lines[0]).toBe('#version: 0.2');
    const known = new Set(ids.slice(0, 512).map(([t]) => t));
    lines.slice(1).forEach((line, rank) => {
      const parts = line.split(' ');
      expect(parts, line).toHaveLength(2);
      // rank order: both halves exist before this merge, its result is the next vocabulary entry
      expect(known.has(parts[0]) && known.has(parts[1]), line).toBe(true);
      expect(vocab[parts[0] + parts[1]], line).toBe(512 + rank);
      known.add(parts[0] + parts[1]);
    });
    expect(ids.length).toBe(512 + lines.length - 1 + 2);
  });

  it('makes each listed prompt word a single token and still covers every other word', async () => {
    const mergesFile = await readFile(path.join(dirA, 'tiny-sd/tokenizer/merges.txt'), 'utf8');
    const ranks = new Map(mergesFile.trimEnd().split('\n').slice(1).map((m, i) => [m, i]));
    for (const word of PROMPT_WORDS) expect(bpe(wordSymbols(word), ranks), word).toEqual([`${word}</w>`]);
    for (const word of ['zebra', 'cats', 'über']) {
      const tokens = bpe(wordSymbols(word), ranks);
      expect(tokens.length).toBeGreaterThan(1);
      for (const t of tokens) expect(vocab[t], t).toBeTypeOf('number');
    }
  });

  // The real CLIP vocabulary is a fixture made by others; without it only the self-consistency above is checked.
  it.skipIf(!existsSync(CLIP_VOCAB))('matches the real CLIP vocabulary on its 512 byte symbols', async () => {
    const real = await readJson<Record<string, number>>(CLIP_VOCAB);
    for (const [token, id] of Object.entries(vocab)) if (id < 512) expect(real[token], token).toBe(id);
  });
});

describe('every model runs at batch 1 and 2 on 64x64 and 72x80 images', () => {
  const sizes: Array<[number, number]> = [
    [64, 64],
    [72, 80],
  ];
  for (const set of SETS) {
    it(set, async () => {
      const half = set === 'tiny-sd-fp16io';
      const floatIn = (data: Float32Array, dims: number[]) => (half ? halfTensor(data, dims) : new ort.Tensor('float32', data, dims));
      const te = await session(set, 'text_encoder');
      const unet = await session(set, 'unet');
      const enc = await session(set, 'vae_encoder');
      const dec = await session(set, 'vae_decoder');
      const unetIn = set === 'tiny-sd-inpaint' ? 9 : 4;
      for (const batch of [1, 2]) {
        const text = await te.run({ input_ids: new ort.Tensor('int32', promptIds(['a', 'photo', 'of', 'a', 'cat'], batch), [batch, 77]) });
        expect(text.last_hidden_state.dims).toEqual([batch, 77, D]);
        expect(text.pooler_output.dims).toEqual([batch, D]);
        expect(allFinite(floats(text.last_hidden_state))).toBe(true);
        const context = half ? text.last_hidden_state : new ort.Tensor('float32', floats(text.last_hidden_state), [batch, 77, D]);
        for (const [H, W] of sizes) {
          const h = H / 8;
          const w = W / 8;
          const image = uniform(batch * 3 * H * W, H + W + batch, -1, 1);
          const latent = (await enc.run({ sample: floatIn(image, [batch, 3, H, W]) })).latent_sample;
          expect(latent.dims).toEqual([batch, 4, h, w]);
          expect(allFinite(floats(latent))).toBe(true);

          const timestepValues = Array.from({ length: batch }, (_, i) => 999 - 400 * i);
          const timestep = half
            ? halfTensor(Float32Array.from(timestepValues), [batch])
            : new ort.Tensor('int64', BigInt64Array.from(timestepValues, BigInt), [batch]);
          const noise = randn(batch * unetIn * h * w, h * w + batch);
          const out = (await unet.run({ sample: floatIn(noise, [batch, unetIn, h, w]), timestep, encoder_hidden_states: context })).out_sample;
          expect(out.dims).toEqual([batch, 4, h, w]);
          expect(allFinite(floats(out))).toBe(true);

          const decoded = (await dec.run({ latent_sample: floatIn(randn(batch * 4 * h * w, 3).map((v) => v / SF), [batch, 4, h, w]) })).sample;
          expect(decoded.dims).toEqual([batch, 3, H, W]);
          expect(allFinite(floats(decoded))).toBe(true);
        }
      }
    });
  }

  it('text encoder takes shorter sequences and pools at the first end token', async () => {
    const te = await session('tiny-sd', 'text_encoder');
    const ids = promptIds(['a', 'red', 'dog'], 2, 16);
    ids[16 + 2] = vocab['<|endoftext|>']; // second prompt ends after one word
    const out = await te.run({ input_ids: new ort.Tensor('int32', ids, [2, 16]) });
    expect(out.last_hidden_state.dims).toEqual([2, 16, D]);
    const hidden = out.last_hidden_state.data as Float32Array;
    const pooled = out.pooler_output.data as Float32Array;
    for (const [b, pos] of [
      [0, 4],
      [1, 2],
    ]) {
      const row = hidden.subarray((b * 16 + pos) * D, (b * 16 + pos + 1) * D);
      expect(maxAbsDiff(pooled.subarray(b * D, (b + 1) * D), row)).toBeLessThan(1e-6);
    }
  });
});

describe('tiny-sd random UNet', () => {
  const h = 8;
  const w = 8;
  async function unetOut(words: string[], t: number, seed: number): Promise<Float32Array> {
    const te = await session('tiny-sd', 'text_encoder');
    const unet = await session('tiny-sd', 'unet');
    const context = (await te.run({ input_ids: new ort.Tensor('int32', promptIds(words), [1, 77]) })).last_hidden_state;
    const out = await unet.run({
      sample: new ort.Tensor('float32', randn(4 * h * w, seed), [1, 4, h, w]),
      timestep: new ort.Tensor('int64', BigInt64Array.of(BigInt(t)), [1]),
      encoder_hidden_states: context,
    });
    return out.out_sample.data as Float32Array;
  }

  it('has out_sample std near 1 and reacts to prompt, timestep and sample', async () => {
    const base = await unetOut(['a', 'photo', 'of', 'a', 'cat'], 500, 1);
    expect(std(base)).toBeGreaterThan(0.6);
    expect(std(base)).toBeLessThan(1.6);
    expect(meanAbsDiff(base, await unetOut(['a', 'painting', 'of', 'a', 'dog'], 500, 1))).toBeGreaterThan(0.02);
    expect(meanAbsDiff(base, await unetOut(['a', 'photo', 'of', 'a', 'cat'], 100, 1))).toBeGreaterThan(0.05);
    expect(meanAbsDiff(base, await unetOut(['a', 'photo', 'of', 'a', 'cat'], 500, 2))).toBeGreaterThan(0.2);
  });

  it('gives each batch entry the result of its own batch-1 call (classifier-free guidance)', async () => {
    const te = await session('tiny-sd', 'text_encoder');
    const unet = await session('tiny-sd', 'unet');
    const ids = new Int32Array([...promptIds([]), ...promptIds(['a', 'blue', 'mountain'])]);
    const context = (await te.run({ input_ids: new ort.Tensor('int32', ids, [2, 77]) })).last_hidden_state.data as Float32Array;
    const sample = randn(4 * h * w, 5);
    const both = await unet.run({
      sample: new ort.Tensor('float32', new Float32Array([...sample, ...sample]), [2, 4, h, w]),
      timestep: new ort.Tensor('int64', BigInt64Array.of(901n, 901n), [2]),
      encoder_hidden_states: new ort.Tensor('float32', context, [2, 77, D]),
    });
    const n = 4 * h * w;
    for (let b = 0; b < 2; b++) {
      const single = await unet.run({
        sample: new ort.Tensor('float32', sample, [1, 4, h, w]),
        timestep: new ort.Tensor('int64', BigInt64Array.of(901n), [1]),
        encoder_hidden_states: new ort.Tensor('float32', context.slice(b * 77 * D, (b + 1) * 77 * D), [1, 77, D]),
      });
      const batched = (both.out_sample.data as Float32Array).subarray(b * n, (b + 1) * n);
      expect(maxAbsDiff(batched, single.out_sample.data as Float32Array)).toBeLessThan(1e-5);
    }
    const halves = both.out_sample.data as Float32Array;
    expect(meanAbsDiff(halves.subarray(0, n), halves.subarray(n))).toBeGreaterThan(0.02);
  });

  it('has a VAE whose latents spread like SD latents and whose decodes span about [-1, 1]', async () => {
    const enc = await session('tiny-sd', 'vae_encoder');
    const dec = await session('tiny-sd', 'vae_decoder');
    const latent = (await enc.run({ sample: new ort.Tensor('float32', uniform(3 * 64 * 64, 11, -1, 1), [1, 3, 64, 64]) })).latent_sample;
    const latentStd = std(latent.data as Float32Array);
    expect(latentStd * SF).toBeGreaterThan(0.4);
    expect(latentStd * SF).toBeLessThan(2);
    const image = (await dec.run({ latent_sample: new ort.Tensor('float32', randn(4 * 8 * 8, 12).map((v) => v / SF), [1, 4, 8, 8]) })).sample
      .data as Float32Array;
    expect(std(image)).toBeGreaterThan(0.15);
    expect(std(image)).toBeLessThan(0.6);
  });
});

describe('tiny-sd-analytic', () => {
  it('VAE roundtrip (encode × sf, ÷ sf, decode) equals the 8x8 block average', async () => {
    const enc = await session('tiny-sd-analytic', 'vae_encoder');
    const dec = await session('tiny-sd-analytic', 'vae_decoder');
    const [B, H, W] = [2, 72, 80];
    const image = uniform(B * 3 * H * W, 21, -1, 1);
    const latent = (await enc.run({ sample: new ort.Tensor('float32', image, [B, 3, H, W]) })).latent_sample;
    const lat = latent.data as Float32Array;
    const [h, w] = [H / 8, W / 8];
    for (let b = 0; b < B; b++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let gray = 0;
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            for (let dy = 0; dy < 8; dy++) for (let dx = 0; dx < 8; dx++) sum += image[((b * 3 + c) * H + y * 8 + dy) * W + x * 8 + dx];
            expect(lat[((b * 4 + c) * h + y) * w + x] * SF).toBeCloseTo(sum / 64, 5);
            gray += sum / 64 / 3;
          }
          expect(lat[((b * 4 + 3) * h + y) * w + x] * SF).toBeCloseTo(gray, 5);
        }
      }
    }
    const pipelineLatents = lat.map((v) => (v * SF) / SF);
    const decoded = (await dec.run({ latent_sample: new ort.Tensor('float32', pipelineLatents, [B, 4, h, w]) })).sample;
    expect(decoded.dims).toEqual([B, 3, H, W]);
    const img = decoded.data as Float32Array;
    let maxErr = 0;
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            const avg = lat[((b * 4 + c) * h + (y >> 3)) * w + (x >> 3)] * SF;
            maxErr = Math.max(maxErr, Math.abs(img[((b * 3 + c) * H + y) * W + x] - avg));
          }
        }
      }
    }
    expect(maxErr).toBeLessThan(1e-6);
  });

  it('UNet is sqrt(1 - alphas_cumprod[t]) * sample, t clamped to [0, 999]', async () => {
    const table = sd15AlphasCumprod();
    for (const [t, value] of Object.entries(TORCH_ALPHAS_CUMPROD)) expect(table[Number(t)]).toBe(Math.fround(value));
    const unet = await session('tiny-sd-analytic', 'unet');
    const ts = [1, 500, 999, -7, 1500];
    const expectedT = [1, 500, 999, 0, 999];
    const [B, h, w] = [ts.length, 9, 10];
    const n = 4 * h * w;
    const sample = randn(B * n, 31);
    const out = await unet.run({
      sample: new ort.Tensor('float32', sample, [B, 4, h, w]),
      timestep: new ort.Tensor('int64', BigInt64Array.from(ts, BigInt), [B]),
      encoder_hidden_states: new ort.Tensor('float32', randn(B * 77 * D, 32), [B, 77, D]),
    });
    const o = out.out_sample.data as Float32Array;
    for (let b = 0; b < B; b++) {
      const scale = Math.sqrt(1 - TORCH_ALPHAS_CUMPROD[expectedT[b]]);
      for (let i = b * n; i < (b + 1) * n; i++) expect(Math.abs(o[i] - scale * sample[i])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(sample[i])));
    }
  });
});

describe('tiny-sd-fp16io', () => {
  it('has float16 graph I/O where the fp16 exports have it, and float32 numbers inside', async () => {
    const types = async (model: string) => {
      const s = await session('tiny-sd-fp16io', model);
      const meta = [...s.inputMetadata, ...s.outputMetadata];
      return Object.fromEntries(meta.map((m) => [m.name, m.isTensor ? m.type : 'non-tensor']));
    };
    expect(await types('unet')).toEqual({ sample: 'float16', timestep: 'float16', encoder_hidden_states: 'float16', out_sample: 'float16' });
    expect(await types('text_encoder')).toEqual({ input_ids: 'int32', last_hidden_state: 'float16', pooler_output: 'float16' });
    expect(await types('vae_encoder')).toEqual({ sample: 'float16', latent_sample: 'float16' });
    expect(await types('vae_decoder')).toEqual({ latent_sample: 'float16', sample: 'float16' });
    const plain = await session('tiny-sd', 'unet');
    expect(Object.fromEntries(plain.inputMetadata.map((m) => [m.name, m.isTensor ? m.type : '']))).toMatchObject({ timestep: 'int64' });

    // same weights as tiny-sd: the outputs agree up to float16 rounding of the I/O
    const sample = randn(4 * 8 * 8, 41);
    const context = (await (await session('tiny-sd', 'text_encoder')).run({ input_ids: new ort.Tensor('int32', promptIds(['a', 'cat']), [1, 77]) }))
      .last_hidden_state.data as Float32Array;
    const ref = (
      await plain.run({
        sample: new ort.Tensor('float32', sample, [1, 4, 8, 8]),
        timestep: new ort.Tensor('int64', BigInt64Array.of(999n), [1]),
        encoder_hidden_states: new ort.Tensor('float32', context, [1, 77, D]),
      })
    ).out_sample.data as Float32Array;
    const half = await (await session('tiny-sd-fp16io', 'unet')).run({
      sample: halfTensor(sample, [1, 4, 8, 8]),
      timestep: halfTensor(Float32Array.of(999), [1]),
      encoder_hidden_states: halfTensor(context, [1, 77, D]),
    });
    expect(half.out_sample.type).toBe('float16');
    expect(meanAbsDiff(halfData(half.out_sample), ref)).toBeLessThan(0.01);
  });
});

describe('tiny-sd safety checker', () => {
  it('flags near-white images (mean clip_input > 1.5) and blacks them out', async () => {
    const checker = await session('tiny-sd', 'safety_checker');
    const px = 224 * 224 * 3;
    const clip = new Float32Array(2 * px);
    clip.fill(1.9, 0, px); // white after CLIP normalisation is about 1.93 .. 2.15
    clip.set(uniform(px, 51, -1.8, 2.1), px);
    const images = uniform(2 * 16 * 24 * 3, 52, 0, 1);
    const out = await checker.run({
      clip_input: new ort.Tensor('float32', clip, [2, 3, 224, 224]),
      images: new ort.Tensor('float32', images, [2, 16, 24, 3]),
    });
    expect(out.has_nsfw_concepts.type).toBe('bool');
    expect(Array.from(out.has_nsfw_concepts.data as Uint8Array).map(Boolean)).toEqual([true, false]);
    expect(out.out_images.dims).toEqual([2, 16, 24, 3]);
    const o = out.out_images.data as Float32Array;
    const n = 16 * 24 * 3;
    expect(o.subarray(0, n).every((v) => v === 0)).toBe(true);
    expect(Array.from(o.subarray(n))).toEqual(Array.from(images.subarray(n)));
  });
});

describe.skipIf(WEBGPU_UNAVAILABLE !== null)('WebGPU EP (onnxruntime-node)', () => {
  // fp16io is left out: its float16 Casts need shader-f16, which SwiftShader lacks (the app falls back there)
  it('runs the float32 sets and agrees with the CPU EP', async () => {
    const feeds: Record<string, () => Record<string, ort.Tensor>> = {
      text_encoder: () => ({ input_ids: new ort.Tensor('int32', new Int32Array([...promptIds(['a', 'cat']), ...promptIds(['red', 'mountain'])]), [2, 77]) }),
      unet: () => ({
        sample: new ort.Tensor('float32', randn(2 * 4 * 9 * 10, 61), [2, 4, 9, 10]),
        timestep: new ort.Tensor('int64', BigInt64Array.of(999n, 1n), [2]),
        encoder_hidden_states: new ort.Tensor('float32', randn(2 * 77 * D, 62), [2, 77, D]),
      }),
      vae_encoder: () => ({ sample: new ort.Tensor('float32', uniform(2 * 3 * 72 * 80, 63, -1, 1), [2, 3, 72, 80]) }),
      vae_decoder: () => ({ latent_sample: new ort.Tensor('float32', randn(2 * 4 * 9 * 10, 64).map((v) => v / SF), [2, 4, 9, 10]) }),
    };
    for (const set of ['tiny-sd', 'tiny-sd-analytic']) {
      for (const model of MODELS) {
        const gpu = await ort.InferenceSession.create(path.join(dirA, set, model, 'model.onnx'), { executionProviders: ['webgpu'], logSeverityLevel: 3 });
        const [ref, got] = [await (await session(set, model)).run(feeds[model]()), await gpu.run(feeds[model]())];
        for (const name of Object.keys(ref)) {
          const r = ref[name].data as Float32Array;
          const scale = r.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
          expect(maxAbsDiff(got[name].data as Float32Array, r), `${set}/${model} ${name}`).toBeLessThan(1e-4 * scale);
        }
        await gpu.release();
      }
    }
  });
});
