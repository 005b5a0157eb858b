/**
 * Tiny replicas of the real repositories the catalogue (src/models/real-models.ts) downloads from:
 * the same repository names, file names and folders, the same graph I/O (names, element types,
 * fixed dimensions), fp16 internals where the real export computes in fp16, MatMulNBits where it is
 * 4-bit, and external data split into as many shards as the real one. The weights are the tiny
 * models'; the layout is the real one's, so a download, a shard, a fixed batch or an fp16 input the
 * app would trip over on the real model trips it here first. The loopback stand-in hub serves them
 * under their real names (tests/support/mock-hub.ts).
 *
 * Facts come from the repositories' model cards and the loaders of the browser demos that run them
 * (sizes, names, dtypes): see the catalogue entries.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DType } from '../onnx/proto.ts';
import { adaptIo, decodeModel, encodeModel, toFloat16, type IoChange } from '../onnx/transform.ts';
import type { QuantParams } from '../quantize/block-quant.ts';
import { rewriteToMatMulNBits } from '../quantize/rewrite.ts';
import { writeShards } from '../quantize/shard-writer.ts';
import { TensorSource } from '../quantize/tensor-data.ts';
import { TinyModelFactory, type SetFile } from './sets.ts';
import { sdxlSetFiles } from './sdxl-set.ts';

/** A repository: real path -> bytes. */
export type RepoFiles = Record<string, Uint8Array>;

interface GraphRecipe {
  /** fp16 internals: 'keep-io' leaves float32 inputs and outputs (keep_io_types), 'fp16-io' makes them float16. */
  fp16?: 'keep-io' | 'fp16-io';
  inputs?: Record<string, IoChange>;
  outputs?: Record<string, IoChange>;
  /** 4-bit weight-only MatMulNBits, as a `_q4` export. */
  quantize?: QuantParams;
  /** External data: the first shard's name and how many shards (the real export's count). */
  shards?: { baseName: string; count: number };
}

const F16 = DType.FLOAT16;

/** The graph at `realPath` (and its shards beside it), made from a tiny graph by the recipe. */
async function recipeFiles(bytes: Uint8Array, realPath: string, recipe: GraphRecipe): Promise<RepoFiles> {
  let model = decodeModel(bytes);
  if (recipe.fp16) model = toFloat16(model, { keepIoTypes: recipe.fp16 === 'keep-io' });
  if (recipe.inputs || recipe.outputs) model = adaptIo(model, { inputs: recipe.inputs, outputs: recipe.outputs });
  const dir = await mkdtemp(path.join(tmpdir(), 'replica-'));
  try {
    const source = new TensorSource(dir);
    if (recipe.quantize) await rewriteToMatMulNBits(model, source, recipe.quantize);
    const out: RepoFiles = {};
    const folder = realPath.includes('/') ? realPath.slice(0, realPath.lastIndexOf('/') + 1) : '';
    if (recipe.shards) {
      const count = await shardsOf(encodeModel(model), recipe.shards, dir);
      const written = await readdir(dir);
      if (count.shards !== recipe.shards.count) throw new Error(`${realPath}: ${count.shards} shards, not ${recipe.shards.count}`);
      for (const file of written) if (file !== 'graph.onnx') out[folder + file] = new Uint8Array(await readFile(path.join(dir, file)));
      out[realPath] = count.graph;
    } else {
      out[realPath] = encodeModel(model);
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes the graph's weights into exactly `count` shards: the shard writer fills each shard up to a
 * limit, so the limit is the weights' total over `count`, raised until the tensors pack into that many.
 */
async function shardsOf(bytes: Uint8Array, shards: { baseName: string; count: number }, dir: string): Promise<{ graph: Uint8Array; shards: number }> {
  const total = bytes.byteLength;
  for (let factor = 1.02; factor < 3; factor += 0.04) {
    for (const f of await readdir(dir)) await rm(path.join(dir, f));
    const model = decodeModel(bytes);
    const written = await writeShards(model.graph!, new TensorSource(dir), dir, { baseName: shards.baseName, maxShardBytes: shards.count === 1 ? undefined : Math.ceil((total / shards.count) * factor) });
    if (written.length === shards.count) return { graph: encodeModel(model), shards: written.length };
  }
  throw new Error(`the weights do not pack into ${shards.count} shards`);
}

/** The graph with its weights moved to `<folder>/model.onnx_data` beside it: `{ [realPath]: graph, [data]: weights }`. */
export function withExternalWeights(bytes: Uint8Array, realPath: string): Promise<RepoFiles> {
  return recipeFiles(bytes, realPath, { shards: { baseName: 'model.onnx_data', count: 1 } });
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A fast tokenizer's tokenizer.json around the tiny BPE vocabulary (what repos that ship only tokenizer.json have). */
function tokenizerJson(vocab: Uint8Array, merges: Uint8Array): Uint8Array {
  const lines = text(merges).split('\n').filter((l) => l && !l.startsWith('#version'));
  return json({ version: '1.0', model: { type: 'BPE', vocab: JSON.parse(text(vocab)) as unknown, merges: lines, end_of_word_suffix: '</w>', unk_token: '<|endoftext|>' } });
}

function pick(files: SetFile[]): (p: string) => Uint8Array {
  const map = new Map(files.map((f) => [f.path, f.bytes]));
  return (p) => {
    const b = map.get(p);
    if (!b) throw new Error(`the tiny set has no ${p}`);
    return b;
  };
}

/** SD-Turbo's scheduler: Euler with trailing timesteps, as stabilityai/sd-turbo ships it. */
function sdTurboScheduler(sd: (p: string) => Uint8Array): Uint8Array {
  return json({ ...(JSON.parse(text(sd('scheduler/scheduler_config.json'))) as Record<string, unknown>), _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'trailing' });
}

export interface ReplicaOptions {
  /**
   * Compute in float16 where the real export does (default). Off, the graphs keep the real I/O,
   * shards and MatMulNBits but compute in float32: what a WebGPU adapter without shader-f16 can run.
   */
  fp16Internals?: boolean;
}

/** Every repository the catalogue reads from, by its real name. */
export async function buildReplicas(options: ReplicaOptions = {}): Promise<Record<string, RepoFiles>> {
  const fp16 = options.fp16Internals ?? true;
  const graphFiles = (bytes: Uint8Array, realPath: string, recipe: GraphRecipe) =>
    recipeFiles(bytes, realPath, fp16 || recipe.fp16 !== 'keep-io' ? recipe : { ...recipe, fp16: undefined });
  const sd = pick(new TinyModelFactory().setFiles('tiny-sd'));
  const xl = pick(sdxlSetFiles());
  const vocabJson = tokenizerJson(sd('tokenizer/vocab.json'), sd('tokenizer/merges.txt'));
  const repos: Record<string, RepoFiles> = {};

  // schmuell/sd-turbo-ort-web: fp16 graphs with float32 I/O (int32 ids, int64 timestep), no tokenizer or scheduler
  repos['schmuell/sd-turbo-ort-web'] = {
    ...(await graphFiles(sd('text_encoder/model.onnx'), 'text_encoder/model.onnx', { fp16: 'keep-io' })),
    ...(await graphFiles(sd('unet/model.onnx'), 'unet/model.onnx', { fp16: 'keep-io', inputs: { timestep: { dims: ['steps'] } } })),
    ...(await graphFiles(sd('vae_decoder/model.onnx'), 'vae_decoder/model.onnx', { fp16: 'keep-io' })),
    ...(await graphFiles(sd('vae_encoder/model.onnx'), 'vae_encoder/model.onnx', { fp16: 'keep-io' })),
  };
  // stabilityai/sd-turbo: the diffusers repository SD-Turbo exports take their tokenizer and scheduler from
  repos['stabilityai/sd-turbo'] = {
    'tokenizer/vocab.json': sd('tokenizer/vocab.json'),
    'tokenizer/merges.txt': sd('tokenizer/merges.txt'),
    'tokenizer/tokenizer_config.json': sd('tokenizer/tokenizer_config.json'),
    'scheduler/scheduler_config.json': sdTurboScheduler(sd),
    'vae/config.json': sd('vae_decoder/config.json'),
  };
  // microsoft/sd-turbo-webnn: static shapes, fp16 I/O (a float16 [1] timestep), the VAE decoder fed float32
  const sample16 = { type: F16, dims: [1, 4, 64, 64] };
  repos['microsoft/sd-turbo-webnn'] = {
    ...(await graphFiles(sd('text_encoder/model.onnx'), 'text_encoder/model_layernorm.onnx', {
      fp16: 'fp16-io', inputs: { input_ids: { dims: [1, 77] } }, outputs: { last_hidden_state: { dims: [1, 77, 32] } },
    })),
    ...(await graphFiles(sd('unet/model.onnx'), 'unet/model_layernorm.onnx', {
      fp16: 'fp16-io',
      inputs: { sample: sample16, timestep: { type: F16, dims: [1] }, encoder_hidden_states: { dims: [1, 77, 32] } },
      outputs: { out_sample: sample16 },
    })),
    ...(await graphFiles(sd('vae_decoder/model.onnx'), 'vae_decoder/model.onnx', { fp16: 'keep-io' })),
    ...(await graphFiles(sd('safety_checker/model.onnx'), 'safety_checker/safety_checker_int32_reduceSum.onnx', {
      fp16: 'fp16-io', inputs: { clip_input: { dims: [1, 3, 224, 224] } },
    })),
    'tokenizer/tokenizer.json': vocabJson,
    'tokenizer/tokenizer_config.json': sd('tokenizer/tokenizer_config.json'),
  };
  // microsoft/stable-diffusion-v1.5-webnn: files at the root; the UNet fixed to batch 2 at 64x64 latents with fp16 I/O and an int64 [2] timestep
  const batch2 = { type: F16, dims: [2, 4, 64, 64] };
  repos['microsoft/stable-diffusion-v1.5-webnn'] = {
    ...(await graphFiles(sd('unet/model.onnx'), 'sd-unet-v1.5-model-b2c4h64w64s77-float16-compute-and-inputs-layernorm.onnx', {
      fp16: 'fp16-io',
      inputs: { sample: batch2, timestep: { dims: [2] }, encoder_hidden_states: { dims: [2, 77, 32] } },
      outputs: { out_sample: batch2 },
    })),
    ...(await graphFiles(sd('text_encoder/model.onnx'), 'text-encoder.onnx', { fp16: 'fp16-io' })),
    ...(await graphFiles(sd('vae_decoder/model.onnx'), 'Stable-Diffusion-v1.5-vae-decoder-float16-fp32-instancenorm.onnx', {
      fp16: 'fp16-io', inputs: { latent_sample: { dims: [1, 4, 64, 64] } }, outputs: { sample: { dims: [1, 3, 512, 512] } },
    })),
    ...(await graphFiles(sd('safety_checker/model.onnx'), 'safety_checker_int32_reduceSum.onnx', { fp16: 'fp16-io', inputs: { clip_input: { dims: [1, 3, 224, 224] } } })),
    'tokenizer/vocab.json': sd('tokenizer/vocab.json'),
    'tokenizer/merges.txt': sd('tokenizer/merges.txt'),
    'tokenizer/tokenizer_config.json': sd('tokenizer/tokenizer_config.json'),
  };
  repos['stable-diffusion-v1-5/stable-diffusion-v1-5'] = {
    'scheduler/scheduler_config.json': sd('scheduler/scheduler_config.json'),
    'vae/config.json': sd('vae_decoder/config.json'),
    'feature_extractor/preprocessor_config.json': sd('feature_extractor/preprocessor_config.json'),
  };

  // Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard: fp16 with float32 I/O, every graph's weights in external data, the UNet's in three shards
  const sdxlTokenizers = {
    'tokenizer/tokenizer.json': tokenizerJson(xl('tokenizer/vocab.json'), xl('tokenizer/merges.txt')),
    'tokenizer/tokenizer_config.json': xl('tokenizer/tokenizer_config.json'),
    'tokenizer_2/tokenizer.json': tokenizerJson(xl('tokenizer_2/vocab.json'), xl('tokenizer_2/merges.txt')),
    'tokenizer_2/tokenizer_config.json': xl('tokenizer_2/tokenizer_config.json'),
  };
  const data = (count: number, baseName = 'model.onnx_data') => ({ baseName, count });
  const sdxlEncoders = async (recipe: GraphRecipe) => ({
    ...(await graphFiles(xl('text_encoder/model.onnx'), 'text_encoder/model.onnx', { ...recipe, shards: data(1) })),
    ...(await graphFiles(xl('text_encoder_2/model.onnx'), 'text_encoder_2/model.onnx', { ...recipe, shards: data(1) })),
    ...(await graphFiles(xl('vae_decoder/model.onnx'), 'vae_decoder/model.onnx', { ...recipe, shards: data(1) })),
  });
  const lightningScheduler = xl('scheduler/scheduler_config.json');
  repos['Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard'] = {
    'model_index.json': xl('model_index.json'),
    'scheduler/scheduler_config.json': lightningScheduler,
    ...sdxlTokenizers,
    ...(await sdxlEncoders({ fp16: 'keep-io' })),
    ...(await graphFiles(xl('unet/model.onnx'), 'unet/model.onnx', { fp16: 'keep-io', shards: data(3) })),
  };
  repos['stabilityai/stable-diffusion-xl-base-1.0'] = { 'vae/config.json': xl('vae_decoder/config.json') };
  // d0gr: the 4-bit UNet alone (float32 I/O, an int64 [1] timestep), and its fp16 companion with the encoders, VAE and tokenizers
  repos['d0gr/sdxl-lightning-onnx-webgpu-int4'] = {
    ...(await graphFiles(xl('unet/model.onnx'), 'unet/model_q4.onnx', {
      inputs: { timestep: { dims: [1] } },
      quantize: { bits: 4, blockSize: 32, scheme: 'symmetric' },
      shards: data(1, 'model_q4.onnx_data'),
    })),
  };
  repos['d0gr/sdxl-lightning-onnx-webgpu'] = { ...sdxlTokenizers, ...(await sdxlEncoders({ fp16: 'keep-io' })) };
  return repos;
}
