// The tiny SDXL set (tools/tiny-models/sdxl-*.ts) checked as a pipeline will meet it: onnxruntime-node
// loads every graph and reports the I/O names, dtypes and dims of the real SDXL exports; the encoders'
// hidden states are distinct where SDXL reads them; the UNet listens to each of its five inputs; the
// replica options change the declared I/O only, never the weights; and the bytes are deterministic.
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16 } from '../../src/engine/float16.ts';
import { WEBGPU_OPS } from '../../tools/onnx/ops.ts';
import { onnx } from '../../tools/onnx/proto.ts';
import { sdxlSetFiles, SDXL_SCALING_FACTOR } from '../../tools/tiny-models/sdxl-set.ts';
import { buildSdxlUNet, type SdxlUNetSpec } from '../../tools/tiny-models/sdxl-unet.ts';
import type { SetFile } from '../../tools/tiny-models/sets.ts';
import { buildTinyTokenizer } from '../../tools/tiny-models/tokenizer.ts';

const tok = buildTinyTokenizer();
const H1 = 32;
const H2 = 48;
const PROJ = 48;
const CROSS = H1 + H2;
const L1 = 2;
const L2 = 3;

type Dims = readonly (number | string)[];
interface Declared {
  name: string;
  type: string;
  dims: Dims;
}

function declared(meta: readonly ort.InferenceSession.ValueMetadata[]): Declared[] {
  return meta.map((m) => {
    if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
    return { name: m.name, type: m.type, dims: m.shape };
  });
}

function fileBytes(files: SetFile[], p: string): Uint8Array {
  const f = files.find((x) => x.path === p);
  if (!f) throw new Error(`no ${p}`);
  return f.bytes;
}

function jsonFile(files: SetFile[], p: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(fileBytes(files, p))) as Record<string, unknown>;
}

function floats(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') return float16ToFloat32(t.data as Uint16Array);
  return t.data as Float32Array;
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
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

function std(a: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < a.length; i++) mean += a[i];
  mean /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - mean) ** 2;
  return Math.sqrt(v / a.length);
}

/** Fixed pseudo-random values in about [-amp, amp]: test inputs only. */
function wave(n: number, phase: number, amp = 1.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin(i * 1.618 + phase) * Math.cos(i * 0.377 + 2 * phase));
}

/** <|startoftext|> ids <|endoftext|> then `pad` up to 77, as CLIPTokenizer pads to max_length. */
function padded(words: number[], pad: number): number[] {
  const ids = [tok.startId, ...words, tok.endId];
  while (ids.length < 77) ids.push(pad);
  return ids;
}

const PAD_2 = tok.vocab['!'];
const PROMPT_A = [tok.vocab['cat</w>'], tok.vocab['on</w>'], tok.vocab['a</w>'], tok.vocab['bench</w>']];
const PROMPT_B = [tok.vocab['red</w>'], tok.vocab['house</w>']];

const files = sdxlSetFiles({ tokenizer: tok });
const sessions: ort.InferenceSession[] = [];

async function load(bytes: Uint8Array): Promise<ort.InferenceSession> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  sessions.push(s);
  return s;
}

let te1: ort.InferenceSession;
let te2: ort.InferenceSession;
let unet: ort.InferenceSession;

beforeAll(async () => {
  te1 = await load(fileBytes(files, 'text_encoder/model.onnx'));
  te2 = await load(fileBytes(files, 'text_encoder_2/model.onnx'));
  unet = await load(fileBytes(files, 'unet/model.onnx'));
});

afterAll(async () => {
  for (const s of sessions) await s.release();
});

function ids32(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int32', Int32Array.from(rows.flat()), [rows.length, rows[0].length]);
}

function ids64(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
}

describe('tiny SDXL set files', () => {
  it('has the optimum/diffusers SDXL layout', () => {
    expect(files.map((f) => f.path)).toEqual([
      'model_index.json',
      'scheduler/scheduler_config.json',
      'text_encoder/config.json',
      'text_encoder/model.onnx',
      'text_encoder_2/config.json',
      'text_encoder_2/model.onnx',
      'tokenizer/merges.txt',
      'tokenizer/special_tokens_map.json',
      'tokenizer/tokenizer_config.json',
      'tokenizer/vocab.json',
      'tokenizer_2/merges.txt',
      'tokenizer_2/special_tokens_map.json',
      'tokenizer_2/tokenizer_config.json',
      'tokenizer_2/vocab.json',
      'unet/config.json',
      'unet/model.onnx',
      'vae_decoder/config.json',
      'vae_decoder/model.onnx',
      'vae_encoder/config.json',
      'vae_encoder/model.onnx',
    ]);
    expect(jsonFile(files, 'model_index.json')).toMatchObject({
      _class_name: 'StableDiffusionXLPipeline',
      force_zeros_for_empty_prompt: true,
      text_encoder: ['transformers', 'CLIPTextModel'],
      text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      tokenizer_2: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
      scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    });
    expect(jsonFile(files, 'unet/config.json')).toMatchObject({
      addition_embed_type: 'text_time',
      addition_time_embed_dim: 8,
      projection_class_embeddings_input_dim: PROJ + 6 * 8,
      cross_attention_dim: CROSS,
      in_channels: 4,
      out_channels: 4,
      use_linear_projection: true,
    });
    expect(jsonFile(files, 'text_encoder/config.json')).toMatchObject({ architectures: ['CLIPTextModel'], hidden_size: H1, num_hidden_layers: L1 });
    expect(jsonFile(files, 'text_encoder_2/config.json')).toMatchObject({
      architectures: ['CLIPTextModelWithProjection'],
      hidden_size: H2,
      num_hidden_layers: L2,
      projection_dim: PROJ,
      pad_token_id: 0,
    });
    for (const vae of ['vae_encoder', 'vae_decoder']) {
      expect(jsonFile(files, `${vae}/config.json`)).toMatchObject({ scaling_factor: SDXL_SCALING_FACTOR, latent_channels: 4 });
    }
    expect(jsonFile(files, 'scheduler/scheduler_config.json')).toMatchObject({
      _class_name: 'EulerDiscreteScheduler',
      timestep_spacing: 'trailing',
      beta_schedule: 'scaled_linear',
      prediction_type: 'epsilon',
    });
    expect(jsonFile(files, 'tokenizer/tokenizer_config.json')).toMatchObject({ pad_token: '<|endoftext|>', model_max_length: 77 });
    expect(jsonFile(files, 'tokenizer_2/tokenizer_config.json')).toMatchObject({ pad_token: '!', model_max_length: 77 });
    expect(jsonFile(files, 'tokenizer_2/special_tokens_map.json')).toMatchObject({ pad_token: '!', eos_token: '<|endoftext|>' });
    expect(fileBytes(files, 'tokenizer_2/vocab.json')).toEqual(fileBytes(files, 'tokenizer/vocab.json'));
    expect(PAD_2).toBe(0);
  });

  it('is built byte for byte the same every time, replicas too', () => {
    const again = sdxlSetFiles();
    expect(again.map((f) => f.path)).toEqual(files.map((f) => f.path));
    again.forEach((f, i) => expect(Buffer.from(f.bytes).equals(Buffer.from(files[i].bytes)), f.path).toBe(true));
    const replica: SdxlUNetSpec = { io: 'float16', timestep: { dtype: 'float16', dims: [1] }, fixed: { batch: 1, height: 64, width: 64 } };
    expect(Buffer.from(buildSdxlUNet(replica).encode()).equals(Buffer.from(buildSdxlUNet(replica).encode()))).toBe(true);
  });

  it('uses only WebGPU ops, opset 17', () => {
    for (const f of files.filter((x) => x.path.endsWith('.onnx'))) {
      const model = onnx.ModelProto.decode(f.bytes);
      expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
      for (const node of model.graph?.node ?? []) expect(WEBGPU_OPS.has(node.opType ?? ''), `${f.path}: ${node.opType}`).toBe(true);
    }
  });
});

describe('tiny SDXL text encoders', () => {
  const hidden = (count: number, width: number): Declared[] =>
    Array.from({ length: count }, (_, i) => ({ name: `hidden_states.${i}`, type: 'float32', dims: ['batch', 'sequence', width] }));

  it('declare the I/O of the real exports: int32 ids and pooler_output, int64 ids and text_embeds, layers + 1 hidden states', () => {
    expect(declared(te1.inputMetadata)).toEqual([{ name: 'input_ids', type: 'int32', dims: ['batch', 'sequence'] }]);
    expect(declared(te1.outputMetadata)).toEqual([
      { name: 'last_hidden_state', type: 'float32', dims: ['batch', 'sequence', H1] },
      { name: 'pooler_output', type: 'float32', dims: ['batch', H1] },
      ...hidden(L1 + 1, H1),
    ]);
    expect(declared(te2.inputMetadata)).toEqual([{ name: 'input_ids', type: 'int64', dims: ['batch', 'sequence'] }]);
    expect(declared(te2.outputMetadata)).toEqual([
      { name: 'text_embeds', type: 'float32', dims: ['batch', PROJ] },
      { name: 'last_hidden_state', type: 'float32', dims: ['batch', 'sequence', H2] },
      ...hidden(L2 + 1, H2),
    ]);
  });

  it('give finite outputs, a penultimate state unlike the last, pooling at the first end token', async () => {
    const rows1 = [padded(PROMPT_A, tok.endId), padded(PROMPT_B, tok.endId)];
    const rows2 = [padded(PROMPT_A, PAD_2), padded(PROMPT_B, PAD_2)];
    const [o1, o2] = [await te1.run({ input_ids: ids32(rows1) }), await te2.run({ input_ids: ids64(rows2) })];
    for (const [o, width, layers] of [
      [o1, H1, L1],
      [o2, H2, L2],
    ] as const) {
      for (const t of Object.values(o)) expect(allFinite(floats(t))).toBe(true);
      const last = floats(o.last_hidden_state);
      expect(o.last_hidden_state.dims).toEqual([2, 77, width]);
      for (let i = 0; i <= layers; i++) expect(o[`hidden_states.${i}`].dims).toEqual([2, 77, width]);
      // SDXL's choice, hidden_states[-2], is a layer's output that final_layer_norm never saw
      expect(meanAbsDiff(floats(o[`hidden_states.${layers - 1}`]), last)).toBeGreaterThan(0.1);
      expect(meanAbsDiff(floats(o[`hidden_states.${layers - 1}`]), floats(o[`hidden_states.${layers}`]))).toBeGreaterThan(0.1);
    }
    // pooler_output is last_hidden_state at each row's first <|endoftext|>
    const pooled = floats(o1.pooler_output);
    const last1 = floats(o1.last_hidden_state);
    [PROMPT_A.length + 1, PROMPT_B.length + 1].forEach((end, row) => {
      const at = last1.subarray((row * 77 + end) * H1, (row * 77 + end + 1) * H1);
      expect(maxAbsDiff(pooled.subarray(row * H1, (row + 1) * H1), at)).toBeLessThan(1e-6);
    });
    expect(o2.text_embeds.dims).toEqual([2, PROJ]);
    const embeds = floats(o2.text_embeds);
    expect(meanAbsDiff(embeds.subarray(0, PROJ), embeds.subarray(PROJ))).toBeGreaterThan(0.05);
    // text_embeds reads the first end token only: under causal attention, what follows it is ignored
    const otherPad = await te2.run({ input_ids: ids64([padded(PROMPT_A, tok.endId), padded(PROMPT_B, tok.vocab['a</w>'])]) });
    expect(maxAbsDiff(floats(otherPad.text_embeds), embeds)).toBeLessThan(1e-5);
  });

  it('take shorter sequences', async () => {
    const o = await te2.run({ input_ids: ids64([[tok.startId, ...PROMPT_B, tok.endId]]) });
    expect(o[`hidden_states.${L2 - 1}`].dims).toEqual([1, 4, H2]);
  });
});

/** The UNet's inputs at batch 2, `h`×`w` latents, with a chosen variation. */
function unetFeeds(h: number, w: number, vary: Partial<Record<'text_embeds' | 'time_ids' | 'timestep' | 'context' | 'sample', boolean>> = {}): Record<string, ort.Tensor> {
  const B = 2;
  const ids = vary.time_ids ? [1024, 1024, 0, 0, 1024, 1024, 768, 512, 64, 32, 768, 512] : [1024, 1024, 0, 0, 1024, 1024, 512, 768, 0, 0, 512, 768];
  return {
    sample: new ort.Tensor('float32', wave(B * 4 * h * w, vary.sample ? 1.1 : 0.3), [B, 4, h, w]),
    timestep: new ort.Tensor('int64', vary.timestep ? BigInt64Array.of(499n, 499n) : BigInt64Array.of(999n, 999n), [B]),
    encoder_hidden_states: new ort.Tensor('float32', wave(B * 77 * CROSS, vary.context ? 2.2 : 0.7), [B, 77, CROSS]),
    text_embeds: new ort.Tensor('float32', wave(B * PROJ, vary.text_embeds ? 3.3 : 0.9), [B, PROJ]),
    time_ids: new ort.Tensor('float32', Float32Array.from(ids), [B, 6]),
  };
}

describe('tiny SDXL UNet', () => {
  it('declares the five inputs of the real exports and out_sample', () => {
    expect(declared(unet.inputMetadata)).toEqual([
      { name: 'sample', type: 'float32', dims: ['batch', 4, 'height', 'width'] },
      { name: 'timestep', type: 'int64', dims: ['batch'] },
      { name: 'encoder_hidden_states', type: 'float32', dims: ['batch', 'sequence', CROSS] },
      { name: 'text_embeds', type: 'float32', dims: ['batch', PROJ] },
      { name: 'time_ids', type: 'float32', dims: ['batch', 6] },
    ]);
    expect(declared(unet.outputMetadata)).toEqual([{ name: 'out_sample', type: 'float32', dims: ['batch', 4, 'height', 'width'] }]);
  });

  it('gives a finite out_sample with std near 1 that depends on every input, text_embeds and time_ids included', async () => {
    const base = floats((await unet.run(unetFeeds(24, 16))).out_sample);
    expect(allFinite(base)).toBe(true);
    expect(std(base)).toBeGreaterThan(0.5);
    expect(std(base)).toBeLessThan(2);
    for (const input of ['text_embeds', 'time_ids', 'timestep', 'context', 'sample'] as const) {
      const changed = floats((await unet.run(unetFeeds(24, 16, { [input]: true }))).out_sample);
      expect(meanAbsDiff(changed, base), input).toBeGreaterThan(0.02);
    }
    // each row has its own time ids: the first row's are equal in both feeds, so its output is too
    const rowIds = floats((await unet.run(unetFeeds(24, 16, { time_ids: true }))).out_sample);
    const half = base.length / 2;
    expect(maxAbsDiff(rowIds.subarray(0, half), base.subarray(0, half))).toBeLessThan(1e-6);
    expect(meanAbsDiff(rowIds.subarray(half), base.subarray(half))).toBeGreaterThan(0.02);
  });

  it('runs on the two encoders\' penultimate states concatenated per token and text_embeds', async () => {
    const rows = [padded(PROMPT_A, tok.endId), padded([], tok.endId)];
    const rows2 = [padded(PROMPT_A, PAD_2), padded([], PAD_2)];
    const a = await te1.run({ input_ids: ids32(rows) });
    const b = await te2.run({ input_ids: ids64(rows2) });
    const s1 = floats(a[`hidden_states.${L1 - 1}`]);
    const s2 = floats(b[`hidden_states.${L2 - 1}`]);
    const context = new Float32Array(2 * 77 * CROSS);
    for (let t = 0; t < 2 * 77; t++) {
      context.set(s1.subarray(t * H1, (t + 1) * H1), t * CROSS);
      context.set(s2.subarray(t * H2, (t + 1) * H2), t * CROSS + H1);
    }
    const feeds = { ...unetFeeds(16, 16), encoder_hidden_states: new ort.Tensor('float32', context, [2, 77, CROSS]), text_embeds: b.text_embeds };
    const out = floats((await unet.run(feeds)).out_sample);
    expect(allFinite(out)).toBe(true);
    expect(std(out)).toBeGreaterThan(0.5);
  });
});

describe('tiny SDXL UNet replicas', () => {
  const base = unetFeeds(16, 16);
  let reference: Float32Array;

  beforeAll(async () => {
    reference = floats((await unet.run(base)).out_sample);
  });

  it('float32 timestep, scalar or per sample: same weights, same output', async () => {
    for (const dims of [[], ['batch']]) {
      const s = await load(buildSdxlUNet({ timestep: { dtype: 'float32', dims } }).encode());
      expect(declared(s.inputMetadata)[1]).toEqual({ name: 'timestep', type: 'float32', dims });
      const timestep = dims.length === 0 ? new ort.Tensor('float32', Float32Array.of(999), []) : new ort.Tensor('float32', Float32Array.of(999, 999), [2]);
      const out = floats((await s.run({ ...base, timestep })).out_sample);
      expect(maxAbsDiff(out, reference)).toBeLessThan(1e-5);
    }
  });

  it('float16 I/O with a float16 [1] timestep, as the fp16 exports', async () => {
    const s = await load(buildSdxlUNet({ io: 'float16', timestep: { dtype: 'float16', dims: [1] } }).encode());
    expect(declared(s.inputMetadata).map((d) => [d.name, d.type, d.dims])).toEqual([
      ['sample', 'float16', ['batch', 4, 'height', 'width']],
      ['timestep', 'float16', [1]],
      ['encoder_hidden_states', 'float16', ['batch', 'sequence', CROSS]],
      ['text_embeds', 'float16', ['batch', PROJ]],
      ['time_ids', 'float16', ['batch', 6]],
    ]);
    expect(declared(s.outputMetadata)).toEqual([{ name: 'out_sample', type: 'float16', dims: ['batch', 4, 'height', 'width'] }]);
    const half = (t: ort.Tensor) => new ort.Tensor('float16', float32ToFloat16(t.data as Float32Array), t.dims);
    const out = await s.run({
      sample: half(base.sample),
      timestep: new ort.Tensor('float16', float32ToFloat16([999]), [1]),
      encoder_hidden_states: half(base.encoder_hidden_states),
      text_embeds: half(base.text_embeds),
      time_ids: half(base.time_ids),
    });
    expect(out.out_sample.type).toBe('float16');
    expect(meanAbsDiff(floats(out.out_sample), reference)).toBeLessThan(5e-3);
  });

  it('fixed dims, e.g. sample [1, 4, 64, 64] and 77 tokens', async () => {
    const s = await load(buildSdxlUNet({ fixed: { batch: 1, height: 64, width: 64, sequence: 77 } }).encode());
    expect(declared(s.inputMetadata).map((d) => d.dims)).toEqual([[1, 4, 64, 64], [1], [1, 77, CROSS], [1, PROJ], [1, 6]]);
    expect(declared(s.outputMetadata)[0].dims).toEqual([1, 4, 64, 64]);
    const feeds = unetFeeds(64, 64);
    const one = (t: ort.Tensor) => {
      const data = t.data as Float32Array | BigInt64Array;
      return new ort.Tensor(t.type, data.slice(0, data.length / 2), [1, ...t.dims.slice(1)]);
    };
    const fixed = floats((await s.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, one(t)])))).out_sample);
    const dynamic = floats((await unet.run(feeds)).out_sample);
    expect(maxAbsDiff(fixed, dynamic.subarray(0, fixed.length))).toBeLessThan(1e-5);
  });
});
