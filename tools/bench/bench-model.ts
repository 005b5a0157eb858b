/**
 * The bench's big case, bench-sd: SD 1.5's UNet layout (tools/tiny-models/unet.ts, 'sd' layout) scaled
 * to ~140 M parameters with seeded random fp32 weights, so that per-step compute dominates a bench run
 * the way it does with real models. ~570 MB: generated once into a cache folder outside public/ (vite
 * would copy it into every build), and regenerated only when the generator's source changes.
 *
 *   npx tsx tools/bench/bench-model.ts [cacheDir]
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ManifestFile } from '../generate-tiny-models.ts';
import { GraphBuilder } from '../onnx/graph.ts';
import type { DTypeCode } from '../onnx/proto.ts';
import { LATENT_CHANNELS } from '../tiny-models/common.ts';
import { modelIndex, schedulerConfig } from '../tiny-models/sets.ts';
import { buildTextEncoder, textEncoderConfig, type TextEncoderSize, type TextEncoderSpec } from '../tiny-models/text-encoder.ts';
import { buildTinyTokenizer, mergesText, specialTokensMap, tokenizerConfig } from '../tiny-models/tokenizer.ts';
import { buildUNet, unetConfig, type UNetSize, type UNetSpec } from '../tiny-models/unet.ts';
import { buildVaeDecoder, buildVaeEncoder, vaeConfig } from '../tiny-models/vae.ts';

export const BENCH_SET = 'bench-sd';
export const DEFAULT_CACHE_DIR = 'node_modules/.cache/sd-bench';
const STAMP = '.generator-stamp.json';
const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * SD 1.5's UNet (block_out_channels 320, 640, 1280, 1280; 859.5 M parameters) with every level at
 * 0.4× the channels: 142.2 M parameters. Heads, cross-attention dim, groups and the time embedding
 * (4 × the first level's channels) as SD 1.5.
 */
export const BENCH_UNET_SIZE: UNetSize = {
  layout: 'sd',
  blockOutChannels: [128, 256, 512, 512],
  layersPerBlock: 2,
  crossAttention: [true, true, true, false],
  heads: 8,
  crossAttentionDim: 768,
  timeEmbedDim: 4 * 128,
  groups: 32,
  outGain: 1.6,
};

/** CLIP ViT-L/14's hidden size and heads (the UNet's cross-attention dim), one layer: the bench measures the UNet. */
export const BENCH_TEXT_ENCODER_SIZE: TextEncoderSize = { hidden: 768, heads: 12, layers: 1 };

const UNET_SPEC: UNetSpec = { inChannels: LATENT_CHANNELS, io: 'float32', size: BENCH_UNET_SIZE };

/** Counts the trainable parameters (every tensor made by layers.ts's weight() is a "weight" or "bias"). */
export class ParameterCountingBuilder extends GraphBuilder {
  parameters = 0;

  override tensor(base: string, dims: number[], data: Float32Array | Int32Array | BigInt64Array | Uint8Array, elemType?: DTypeCode): string {
    if (base === 'weight' || base === 'bias') this.parameters += data.length;
    return super.tensor(base, dims, data, elemType);
  }
}

export function buildBenchUNet(): ParameterCountingBuilder {
  const b = buildUNet(UNET_SPEC, (name, seed) => new ParameterCountingBuilder(name, seed));
  if (!(b instanceof ParameterCountingBuilder)) throw new Error('buildUNet did not use the given builder');
  return b;
}

interface LazyFile {
  path: string;
  /** Built when written, so that only one model's bytes are alive at a time. */
  bytes: () => Uint8Array;
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

function benchSetFiles(onUNetParameters: (count: number) => void): LazyFile[] {
  const tok = buildTinyTokenizer();
  const textSpec: TextEncoderSpec = {
    vocabSize: tok.vocabSize,
    endId: tok.endId,
    io: 'float32',
    size: BENCH_TEXT_ENCODER_SIZE,
    nameOrPath: `sd-browser/${BENCH_SET}`,
  };
  const files: LazyFile[] = [
    {
      path: 'model_index.json',
      bytes: () =>
        json(
          modelIndex({
            pipeline: 'StableDiffusionPipeline',
            safetyChecker: false,
            description:
              "Bench case: SD 1.5's UNet layout at 0.4x the channels (~142 M parameters, seeded random fp32 weights), a one-layer 768-wide CLIP-like text encoder, and the tiny sets' VAE (its decoder is NOT SD-sized: the bench measures the UNet).",
          }),
        ),
    },
    { path: 'scheduler/scheduler_config.json', bytes: () => json(schedulerConfig()) },
    { path: 'tokenizer/vocab.json', bytes: () => json(tok.vocab) },
    { path: 'tokenizer/merges.txt', bytes: () => new TextEncoder().encode(mergesText(tok.merges)) },
    { path: 'tokenizer/tokenizer_config.json', bytes: () => json(tokenizerConfig()) },
    { path: 'tokenizer/special_tokens_map.json', bytes: () => json(specialTokensMap()) },
    { path: 'text_encoder/model.onnx', bytes: () => buildTextEncoder(textSpec).encode() },
    { path: 'text_encoder/config.json', bytes: () => json(textEncoderConfig(textSpec, tok.startId)) },
    {
      path: 'unet/model.onnx',
      bytes: () => {
        const unet = buildBenchUNet();
        onUNetParameters(unet.parameters);
        // encode() copies the ~570 MB of initializers once more; `unet` is dropped when this returns
        return unet.encode();
      },
    },
    { path: 'unet/config.json', bytes: () => json(unetConfig(UNET_SPEC)) },
    // The tiny sets' VAE, not an SD-sized one: the bench's per-step figures are the UNet's.
    { path: 'vae_encoder/model.onnx', bytes: () => buildVaeEncoder('float32').encode() },
    { path: 'vae_encoder/config.json', bytes: () => json(vaeConfig()) },
    { path: 'vae_decoder/model.onnx', bytes: () => buildVaeDecoder('float32').encode() },
    { path: 'vae_decoder/config.json', bytes: () => json(vaeConfig()) },
  ];
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The generator's version: a hash of every source file the bytes depend on, so that a change to a
 * layer, the RNG or this file regenerates the cache, and nothing else does.
 */
async function generatorVersion(): Promise<string> {
  const hash = createHash('sha256');
  for (const dir of ['../onnx', '../tiny-models']) {
    const abs = path.resolve(HERE, dir);
    for (const name of (await readdir(abs)).filter((f) => f.endsWith('.ts')).sort()) {
      hash.update(`${dir}/${name}\0`).update(await readFile(path.join(abs, name))).update('\0');
    }
  }
  hash.update(await readFile(fileURLToPath(import.meta.url)));
  return hash.digest('hex');
}

interface Stamp {
  version: string;
  files: ManifestFile[];
}

/** The stamp's manifest when it matches this generator and every file is there with its size. */
async function readStamp(dir: string, version: string): Promise<ManifestFile[] | null> {
  try {
    const stamp = JSON.parse(await readFile(path.join(dir, STAMP), 'utf8')) as Stamp;
    if (stamp.version !== version) return null;
    for (const f of stamp.files) if ((await stat(path.join(dir, ...f.path.split('/')))).size !== f.size) return null;
    return stamp.files;
  } catch {
    return null;
  }
}

/**
 * Writes bench-sd to `<cacheDir>/bench-sd/` (the layout of public/models/<set>/) unless its stamp says
 * this generator already did, and returns the set's models.json entry.
 */
export async function ensureBenchModel(cacheDir = DEFAULT_CACHE_DIR): Promise<{ dir: string; files: ManifestFile[] }> {
  const dir = path.resolve(cacheDir, BENCH_SET);
  const version = await generatorVersion();
  const cached = await readStamp(dir, version);
  if (cached) return { dir, files: cached };

  console.log(`Generating the ${BENCH_SET} model set into ${dir} (once per generator version)…`);
  const started = performance.now();
  // the stamp is written last: an interrupted run leaves no stamp and starts over
  await rm(dir, { recursive: true, force: true });
  let parameters = 0;
  const files: ManifestFile[] = [];
  for (const file of benchSetFiles((n) => (parameters = n))) {
    const bytes = file.bytes();
    const target = path.join(dir, ...file.path.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, bytes);
    files.push({ path: file.path, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  await writeFile(path.join(dir, STAMP), `${JSON.stringify({ version, files } satisfies Stamp, null, 2)}\n`);
  const total = files.reduce((sum, f) => sum + f.size, 0);
  console.log(
    `${BENCH_SET}: UNet ${(parameters / 1e6).toFixed(1)} M parameters, ${(total / 1024 ** 2).toFixed(0)} MiB in ${files.length} files, ` +
      `generated in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return { dir, files };
}

function isMain(): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  const { dir, files } = await ensureBenchModel(process.argv[2]);
  for (const f of files) console.log(`${f.path.padEnd(36)} ${(f.size / 1024).toFixed(1).padStart(12)} KiB`);
  console.log(dir);
}
