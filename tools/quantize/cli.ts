/**
 * `npm run quantize -- <model dir> --bits 4|8 --block 32|128 [--out <dir>] [--scheme asymmetric|symmetric] [--min-max] [--max-shard-mb <MB>]`
 *
 * Writes a copy of the model folder whose UNet has MatMulNBits weights (tools/quantize/quantize-model.ts)
 * and prints the sizes before and after. Default output: `<model dir>-int<bits>-b<block>` beside it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QuantBits, QuantScheme } from './block-quant.ts';
import { DEFAULT_SCHEME } from './scheme.ts';
import { quantizeModelDir, type QuantizeOptions } from './quantize-model.ts';

export interface CliArgs {
  modelDir: string;
  outDir: string;
  options: QuantizeOptions;
}

export const USAGE =
  'usage: npm run quantize -- <model dir> --bits 4|8 --block 32|128 [--out <dir>] [--scheme asymmetric|symmetric] [--min-max] [--max-shard-mb <MB>]\n' +
  '  --min-max: plain min/max block ranges, without the least-squared-error step search';

export function parseArgs(argv: string[]): CliArgs {
  let modelDir: string | undefined;
  let outDir: string | undefined;
  let bits: number | undefined;
  let block: number | undefined;
  let scheme: QuantScheme = DEFAULT_SCHEME;
  let maxShardBytes: number | undefined;
  let minMax = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    // both `--bits 4` and `--bits=4`
    const [flag, inline] = arg.startsWith('--') ? arg.split('=', 2) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === '--min-max') minMax = true;
    else if (flag === '--bits') bits = Number(value());
    else if (flag === '--block') block = Number(value());
    else if (flag === '--out') outDir = value();
    else if (flag === '--scheme') {
      const v = value();
      if (v !== 'asymmetric' && v !== 'symmetric') throw new Error(`--scheme takes asymmetric or symmetric, not ${v}`);
      scheme = v;
    } else if (flag === '--max-shard-mb') {
      maxShardBytes = Math.floor(Number(value()) * 1e6);
      if (!(maxShardBytes > 0)) throw new Error(`--max-shard-mb takes a positive number\n${USAGE}`);
    } else if (flag.startsWith('--')) throw new Error(`unknown option ${flag}\n${USAGE}`);
    else if (modelDir === undefined) modelDir = arg;
    else throw new Error(`one model dir only (got ${modelDir} and ${arg})\n${USAGE}`);
  }
  if (!modelDir) throw new Error(USAGE);
  if (bits !== 4 && bits !== 8) throw new Error(`--bits takes 4 or 8\n${USAGE}`);
  if (block !== 32 && block !== 128) throw new Error(`--block takes 32 or 128\n${USAGE}`);
  const resolved = path.resolve(modelDir);
  return {
    modelDir: resolved,
    outDir: path.resolve(outDir ?? `${resolved}-int${bits}-b${block}`),
    options: { bits: bits as QuantBits, blockSize: block, scheme, minMax, maxShardBytes },
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { bits, blockSize, scheme, minMax } = args.options;
  console.log(`Quantizing ${args.modelDir}/unet to ${bits}-bit blocks of ${blockSize} (${scheme}${minMax ? ', min/max ranges' : ''}) into ${args.outDir}`);
  const started = performance.now();
  const r = await quantizeModelDir(args.modelDir, args.outDir, args.options);
  const matmuls = r.report.rewritten.filter((n) => n.op === 'MatMul').length;
  console.log(`MatMulNBits: ${r.report.rewritten.length} nodes (${matmuls} MatMul, ${r.report.rewritten.length - matmuls} Gemm)`);
  // grouped: a UNet has dozens of attention MatMuls whose B is an activation
  const skipped = new Map<string, string[]>();
  for (const s of r.report.skipped) skipped.set(`${s.op}: ${s.reason}`, [...(skipped.get(`${s.op}: ${s.reason}`) ?? []), s.node]);
  for (const [why, nodes] of skipped) console.log(`  left as they were: ${nodes.length} ${why} (e.g. ${nodes[0]})`);
  console.log(`quantized weights: ${mb(r.report.weightBytesBefore)} -> ${mb(r.report.weightBytesAfter)}`);
  console.log(`unet: ${mb(r.unetBytesBefore)} -> ${mb(r.unetBytesAfter)} (${(r.unetBytesAfter / r.unetBytesBefore).toFixed(3)}x)`);
  for (const s of r.shards) console.log(`  unet/${s.file}: ${mb(s.bytes)}, ${s.tensors} tensors`);
  console.log(`copied ${r.copied.length} other files unchanged; done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
