/**
 * Quantizes a model folder's UNet: reads `<in>/unet/model.onnx` (and the external data it names),
 * rewrites its MatMul/Gemm weights as MatMulNBits, writes `<out>/unet/model.onnx` with every
 * initializer in external-data shards, and copies every other file of the folder unchanged.
 */
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onnx } from '../onnx/proto.ts';
import { checkParams, type QuantParams } from './block-quant.ts';
import { rewriteToMatMulNBits, type RewriteReport } from './rewrite.ts';
import { DEFAULT_SHARD_BASE, writeShards, type Shard, type ShardOptions } from './shard-writer.ts';
import { externalLocations, externalPath, TensorSource } from './tensor-data.ts';

export const UNET_GRAPH = 'unet/model.onnx';

export interface QuantizeOptions extends QuantParams, ShardOptions {}

export interface QuantizeResult {
  report: RewriteReport;
  /** The UNet's graph plus its external data, before and after. */
  unetBytesBefore: number;
  unetBytesAfter: number;
  shards: Shard[];
  /** Files copied unchanged, relative to the folder. */
  copied: string[];
}

async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await filesUnder(dir, child)));
    else if (entry.isFile()) out.push(child);
  }
  return out.sort();
}

function sameOrInside(a: string, b: string): boolean {
  const rel = path.relative(b, a);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export async function quantizeModelDir(inDir: string, outDir: string, options: QuantizeOptions): Promise<QuantizeResult> {
  checkParams(options);
  const src = path.resolve(inDir);
  const dst = path.resolve(outDir);
  // the output is written while the input's files are still being read
  if (sameOrInside(dst, src) || sameOrInside(src, dst)) throw new Error(`the output folder ${dst} must lie outside the model folder ${src} (and not contain it)`);
  const unetDir = path.join(src, 'unet');
  const graphBytes = await readFile(path.join(src, UNET_GRAPH));
  const model = onnx.ModelProto.decode(graphBytes);
  if (!model.graph) throw new Error(`${UNET_GRAPH} has no graph`);
  const inputData = externalLocations(model.graph).map((l) => externalPath(unetDir, l));
  let unetBytesBefore = graphBytes.byteLength;
  for (const f of inputData) unetBytesBefore += (await stat(f)).size;

  const source = new TensorSource(unetDir);
  const report = await rewriteToMatMulNBits(model, source, options);

  await mkdir(path.join(dst, 'unet'), { recursive: true });
  // shards of an earlier run with more shards would sit there unreferenced; nothing else is removed
  const baseName = options.baseName ?? DEFAULT_SHARD_BASE;
  for (const name of await readdir(path.join(dst, 'unet'))) {
    if (name === baseName || name.startsWith(`${baseName}_`)) await rm(path.join(dst, 'unet', name));
  }
  const shards = await writeShards(model.graph, source, path.join(dst, 'unet'), options);
  const outGraph = onnx.ModelProto.encode(model).finish();
  await writeFile(path.join(dst, UNET_GRAPH), outGraph);
  const unetBytesAfter = outGraph.byteLength + shards.reduce((sum, s) => sum + s.bytes, 0);

  // the UNet's own files are replaced, not copied: the old shards would be stale and large
  const replaced = new Set([path.join(src, UNET_GRAPH), ...inputData]);
  const written = new Set([UNET_GRAPH, ...shards.map((s) => `unet/${s.file}`)]);
  const copied: string[] = [];
  for (const rel of await filesUnder(src)) {
    const from = path.join(src, rel);
    if (replaced.has(from) || written.has(rel)) continue;
    await mkdir(path.dirname(path.join(dst, rel)), { recursive: true });
    await copyFile(from, path.join(dst, rel));
    copied.push(rel);
  }
  return { report, unetBytesBefore, unetBytesAfter, shards, copied };
}
