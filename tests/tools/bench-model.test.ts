// The bench-sd case of tools/bench/bench-model.ts, checked without writing its ~570 MB: the UNet graph
// is built in memory and counted, a small UNet of the same ('sd') layout runs on onnxruntime-node,
// and the tiny sets' builders, now parametrised, still give the bytes they gave before.
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { BENCH_TEXT_ENCODER_SIZE, BENCH_UNET_SIZE, buildBenchUNet, ParameterCountingBuilder } from '../../tools/bench/bench-model.ts';
import { WEBGPU_OPS } from '../../tools/onnx/ops.ts';
import { onnx } from '../../tools/onnx/proto.ts';
import { buildTextEncoder, textEncoderConfig } from '../../tools/tiny-models/text-encoder.ts';
import { buildTinyTokenizer } from '../../tools/tiny-models/tokenizer.ts';
import { buildUNet, TINY_UNET_SIZE, unetConfig, unetParameterCount, type UNetSize } from '../../tools/tiny-models/unet.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** SD 1.5's UNet sizes (runwayml/stable-diffusion-v1-5 unet/config.json). */
const SD15: UNetSize = {
  layout: 'sd',
  blockOutChannels: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  crossAttention: [true, true, true, false],
  heads: 8,
  crossAttentionDim: 768,
  timeEmbedDim: 1280,
  groups: 32,
  outGain: 1,
};

/** The bench layout at a size that runs in milliseconds. */
const MINI: UNetSize = {
  layout: 'sd',
  blockOutChannels: [32, 64, 64],
  layersPerBlock: 2,
  crossAttention: [true, true, false],
  heads: 2,
  crossAttentionDim: 48,
  timeEmbedDim: 128,
  groups: 8,
  outGain: 1.6,
};

describe('bench-sd UNet', () => {
  it('counts parameters as torch counts UNet2DConditionModel (SD 1.5: 859,520,964)', () => {
    expect(unetParameterCount(SD15)).toBe(859_520_964);
  });

  it('has 100-200 M parameters, every one in the graph, and only WebGPU ops', () => {
    const unet = buildBenchUNet();
    expect(unet.parameters).toBe(unetParameterCount(BENCH_UNET_SIZE));
    expect(unet.parameters).toBeGreaterThan(100e6);
    expect(unet.parameters).toBeLessThan(200e6);
    const ops = unet.opTypes();
    expect(ops.filter((op) => !WEBGPU_OPS.has(op))).toEqual([]);
    expect(ops).toEqual(expect.arrayContaining(['Conv', 'InstanceNormalization', 'LayerNormalization', 'MatMul', 'Gemm', 'Softmax', 'Resize', 'Split', 'Erf']));
  }, 20_000);

  it("states SD 1.5's layout at the bench's sizes in unet/config.json", () => {
    const config = unetConfig({ inChannels: 4, io: 'float32', size: BENCH_UNET_SIZE });
    expect(config).toMatchObject({
      attention_head_dim: 8,
      block_out_channels: [128, 256, 512, 512],
      cross_attention_dim: 768,
      down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
      layers_per_block: 2,
      norm_num_groups: 32,
      up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    });
    expect(BENCH_TEXT_ENCODER_SIZE.hidden).toBe(BENCH_UNET_SIZE.crossAttentionDim);
  });
});

describe("the 'sd' UNet layout, small", () => {
  const builder = buildUNet({ inChannels: 4, io: 'float32', size: MINI }, (name, seed) => new ParameterCountingBuilder(name, seed));
  const bytes = builder.encode();

  it('stores exactly the counted parameters as weight/bias initializers', () => {
    const model = onnx.ModelProto.decode(bytes);
    const graph = model.graph!;
    const stored = (graph.initializer ?? [])
      .filter((t) => /\/(weight|bias)$/.test(t.name ?? ''))
      .reduce((sum, t) => sum + (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1), 0);
    expect(stored).toBe(unetParameterCount(MINI));
    expect(builder instanceof ParameterCountingBuilder && builder.parameters).toBe(stored);
    expect((graph.input ?? []).map((i) => [i.name, i.type?.tensorType?.elemType])).toEqual([
      ['sample', onnx.TensorProto.DataType.FLOAT],
      ['timestep', onnx.TensorProto.DataType.INT64],
      ['encoder_hidden_states', onnx.TensorProto.DataType.FLOAT],
    ]);
    expect((graph.output ?? []).map((o) => o.name)).toEqual(['out_sample']);
  });

  // odd sizes: each upsample resizes to its skip's size, as diffusers' upsample_size does
  it.each([
    [16, 16],
    [13, 11],
  ])('runs on onnxruntime-node at batch 2, %i x %i latents, with finite output of std near 1', async (h, w) => {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const n = 2 * 4 * h * w;
    const out = await session.run({
      sample: new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 1.7), [2, 4, h, w]),
      timestep: new ort.Tensor('int64', BigInt64Array.of(901n, 41n), [2]),
      encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 7 * 48 }, (_, i) => Math.cos(i * 0.37) * 1.4), [2, 7, 48]),
    });
    await session.release();
    const y = out.out_sample;
    expect(y.dims).toEqual([2, 4, h, w]);
    const data = y.data as Float32Array;
    expect(data.every(Number.isFinite)).toBe(true);
    const mean = data.reduce((a, v) => a + v, 0) / data.length;
    const std = Math.sqrt(data.reduce((a, v) => a + (v - mean) ** 2, 0) / data.length);
    expect(std).toBeGreaterThan(0.5);
    expect(std).toBeLessThan(2);
  });
});

describe('tiny sets after the size specs', () => {
  // sha256 of the tiny builders' output from before they took size specs: the tiny sets are fixtures
  // of the unit and browser tests. A deliberate change to the tiny models updates these.
  it('builds the bytes it built before', () => {
    const tok = buildTinyTokenizer();
    const text = (io: 'float32' | 'float16') => sha256(buildTextEncoder({ vocabSize: tok.vocabSize, endId: tok.endId, io }).encode());
    expect(sha256(buildUNet({ inChannels: 4, io: 'float32' }).encode())).toBe('b1b7164a1884981e2256e78fe916ea58b19b1d5c1a600b2ca2420ff16c840387');
    expect(sha256(buildUNet({ inChannels: 4, io: 'float16' }).encode())).toBe('76a956efd3f9d250e1826840fd85e0f6c6a89f9aecbf7a9eaaa594d54e5cb334');
    expect(sha256(buildUNet({ inChannels: 9, io: 'float32', size: TINY_UNET_SIZE }).encode())).toBe('e43f3859f5af23f147374da1b04c78e51525c14b0e8117db8efb11e31915fda2');
    expect(text('float32')).toBe('eb8728e867ba7c07c61e67be579774bb7bd562886f5b792a3a009f74de12b620');
    expect(text('float16')).toBe('9faed7f8021439778451967d3e17aee3fb7e48537b7ec7d8abc762b057cb938c');
    expect(unetConfig({ inChannels: 4, io: 'float32' })).toMatchObject({
      block_out_channels: [32, 32],
      down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D'],
    });
    expect(textEncoderConfig({ vocabSize: tok.vocabSize, endId: tok.endId, io: 'float32' }, tok.startId)).toMatchObject({
      _name_or_path: 'sd-browser/tiny-sd',
      hidden_size: 32,
    });
  });
});
