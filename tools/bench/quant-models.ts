/**
 * The bench's quantization case: bench-sd's UNet and its MatMulNBits copies at each setting
 * (4 and 8 bits, blocks of 32 and 128), quantized once into the bench cache beside bench-sd and
 * again only when bench-sd or the quantizer's source changes.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QuantBits } from '../quantize/block-quant.ts';
import { quantizeModelDir, UNET_GRAPH } from '../quantize/quantize-model.ts';
import { DEFAULT_SCHEME } from '../quantize/scheme.ts';
import { externalLocations } from '../quantize/tensor-data.ts';
import { onnx } from '../onnx/proto.ts';
import { BENCH_SET, DEFAULT_CACHE_DIR, ensureBenchModel } from './bench-model.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const STAMP = '.quantize-stamp.json';

export interface QuantSetting {
  bits: QuantBits;
  blockSize: number;
}

export const QUANT_SETTINGS: readonly QuantSetting[] = [
  { bits: 8, blockSize: 32 },
  { bits: 8, blockSize: 128 },
  { bits: 4, blockSize: 32 },
  { bits: 4, blockSize: 128 },
];

export function settingLabel(s: QuantSetting | null): string {
  return s ? `int${s.bits} b${s.blockSize}` : 'fp32';
}

/** One UNet of the case: where its graph is, which external-data files it names, how big it is. */
export interface QuantModel {
  id: string;
  /** null: the fp32 reference. */
  setting: QuantSetting | null;
  /** The model folder (unet/model.onnx inside). */
  dir: string;
  /** The files the graph names as external data, relative to unet/. */
  externalData: string[];
  /** unet/model.onnx plus its external data. */
  unetBytes: number;
}

/** A hash of everything the quantized bytes depend on: the quantizer's source and bench-sd's own stamp. */
async function quantizerVersion(benchDir: string): Promise<string> {
  const hash = createHash('sha256');
  const dir = path.resolve(HERE, '../quantize');
  for (const name of (await readdir(dir)).filter((f) => f.endsWith('.ts')).sort()) {
    hash.update(`${name}\0`).update(await readFile(path.join(dir, name))).update('\0');
  }
  hash.update(await readFile(path.join(benchDir, '.generator-stamp.json')));
  return hash.digest('hex');
}

/** A model folder's UNet as the case measures it. */
export async function describeQuantModel(id: string, setting: QuantSetting | null, dir: string): Promise<QuantModel> {
  const graph = await readFile(path.join(dir, UNET_GRAPH));
  const externalData = externalLocations(onnx.ModelProto.decode(graph).graph ?? {});
  let unetBytes = graph.byteLength;
  for (const f of externalData) unetBytes += (await stat(path.join(dir, 'unet', f))).size;
  return { id, setting, dir, externalData, unetBytes };
}

async function stampMatches(dir: string, version: string): Promise<boolean> {
  try {
    return (JSON.parse(await readFile(path.join(dir, STAMP), 'utf8')) as { version?: string }).version === version;
  } catch {
    return false;
  }
}

/** bench-sd (generated if need be) and its quantized copies, the fp32 reference first. */
export async function ensureQuantModels(log: (line: string) => void = console.log, cacheDir = DEFAULT_CACHE_DIR): Promise<QuantModel[]> {
  const bench = await ensureBenchModel(cacheDir);
  const version = await quantizerVersion(bench.dir);
  const models = [await describeQuantModel(BENCH_SET, null, bench.dir)];
  for (const setting of QUANT_SETTINGS) {
    const id = `${BENCH_SET}-int${setting.bits}-b${setting.blockSize}`;
    const dir = path.resolve(cacheDir, id);
    if (!(await stampMatches(dir, version))) {
      const started = performance.now();
      await quantizeModelDir(bench.dir, dir, { ...setting, scheme: DEFAULT_SCHEME });
      // written last: an interrupted run leaves no stamp and quantizes again
      await writeFile(path.join(dir, STAMP), `${JSON.stringify({ version, scheme: DEFAULT_SCHEME })}\n`);
      log(`  quantized ${id} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    models.push(await describeQuantModel(id, setting, dir));
  }
  return models;
}
