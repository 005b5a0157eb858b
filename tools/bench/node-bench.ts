/**
 * `npm run bench -- --node`: the bench's cases on the DOM-free engine under onnxruntime-node, on its
 * WebGPU EP (Dawn on SwiftShader's Vulkan here) and its CPU EP: cold and warm loads, then guided,
 * unguided and naive-baseline text2img runs (node-measure.ts). Prints a table and writes it, with the
 * raw samples and the machine, to bench-results/bench-node-<date>.json.
 *
 *   npm run bench -- --node                       tiny-sd and bench-sd, both backends
 *   npm run bench -- --node --case=tiny-sd        one case (tiny-sd | bench-sd | quantize)
 *   npm run bench -- --node --only=cpu            one backend (webgpu | cpu)
 *   npm run bench -- --node --size=128 --steps=10 override the selected cases' size and steps
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem, type } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import { nodeWebgpuUnavailableReason } from '../node-webgpu.ts';
import { generateTinyModels } from '../generate-tiny-models.ts';
import { generateTaesd, TAESD_MODEL_ID } from '../taesd.ts';
import { BENCH_SET, ensureBenchModel } from './bench-model.ts';
import { measureCaseBackend, type CaseBackendMeasurements, type NodeBackend, type NodeModel, type NodePlan } from './node-measure.ts';
import { buildNodeRows, columnName, summarizeColumn, type ColumnSummary, type NodeRow } from './node-report.ts';
import { measureQuantNode, type QuantColumn, type QuantPlan } from './quant-measure.ts';
import { ensureQuantModels } from './quant-models.ts';
import { buildQuantRows, quantRaw } from './quant-report.ts';
import { formatTable } from './report.ts';

export const NODE_CASES = ['tiny-sd', BENCH_SET] as const;
/** The quantization case: single UNet calls of bench-sd and its MatMulNBits copies (quant-measure.ts), a table of its own. */
export const QUANT_CASE = 'quantize';
export type NodeCase = (typeof NODE_CASES)[number];
const BACKENDS: NodeBackend[] = ['webgpu', 'cpu'];

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM_LIBS = '/usr/lib/chromium';
/** Set in the re-executed child, so that it never re-executes again. */
const CHILD_MARK = 'SD_NODE_BENCH_CHILD';
const HERE = path.dirname(fileURLToPath(import.meta.url));

/** tiny-sd's width and height, as the browser bench runs it. */
const TINY_SD_SIZE = 512;
/** bench-sd's (--size= overrides either): small enough that the case finishes in minutes on the CPU. */
const BENCH_SD_SIZE = 256;

/** True when the WebGPU EP runs on SwiftShader (a CPU emulation of a GPU): plans shrink to fit. */
function softwareGpu(): boolean {
  return /swiftshader/i.test(process.env.VK_ICD_FILENAMES ?? '');
}

/**
 * The plans, per case and backend; a string: not run by default, and why. On SwiftShader a tiny-sd
 * step at 512x512 takes ~2 s and its VAE decode ~18 s, so WebGPU gets one run of each kind; the CPU
 * gets more. Every plan starts with the cheap 64x64 warm-up (node-measure.ts): without it the first
 * timed run on WebGPU holds ~10 s of shader compilation and the whole-image ratios compare
 * compilation, not generation. The whole default `--node` run takes about 5 minutes on 2 cores.
 */
function defaultPlan(c: NodeCase, backend: NodeBackend): NodePlan | string {
  const base = { guidanceScale: 7.5, steps: 20 };
  if (c === 'tiny-sd') {
    return backend === 'webgpu'
      ? { ...base, size: TINY_SD_SIZE, coldLoads: 1, warmLoads: 2, runs: 1, warmup: true }
      : { ...base, size: TINY_SD_SIZE, coldLoads: 3, warmLoads: 3, runs: 3, warmup: true };
  }
  // bench-sd: 256x256 (32x32 latents), one size for both backends. On the CPU that is ~0.16 s per
  // batch-1 UNet call on 2 cores, ~2 minutes for the plan below; on SwiftShader it is out of reach either way.
  if (backend === 'cpu') return { ...base, size: BENCH_SD_SIZE, coldLoads: 2, warmLoads: 3, runs: 3, warmup: true };
  if (!softwareGpu()) return { ...base, size: BENCH_SD_SIZE, coldLoads: 1, warmLoads: 2, runs: 1, warmup: true };
  return 'not run by default on SwiftShader: measured ~32 s per guided step and ~19 s per unguided one at 128x128, so one 20-step run of each kind ' +
    'would take half an hour. Ask for it with --case=bench-sd --only=webgpu (3 steps at 128x128, ~5 minutes)';
}

/** bench-sd on SwiftShader when asked for by name: the smallest plan that still has two step intervals (no warm-up: it would add minutes). */
const BENCH_SD_SWIFTSHADER: NodePlan = { guidanceScale: 7.5, steps: 3, size: 128, coldLoads: 1, warmLoads: 1, runs: 1, warmup: false };

/** The smallest plan: one load of each kind, one 2-step run of each kind at 64x64 (the unit test's). */
export const SMALL_PLAN: NodePlan = { guidanceScale: 7.5, steps: 2, size: 64, coldLoads: 1, warmLoads: 1, runs: 1, warmup: false };

export interface NodeBenchOptions {
  cases: readonly NodeCase[];
  backends: readonly NodeBackend[];
  /** Replaces fields of every selected plan (--size=, --steps=, or the test's SMALL_PLAN). */
  plan?: Partial<NodePlan>;
  /** Run plans that are off by default (bench-sd on SwiftShader) because they were asked for by name. */
  forceSlow?: boolean;
  log?: (line: string) => void;
}

export interface Machine {
  os: string;
  cpus: string;
  memoryGiB: number;
  node: string;
  onnxruntimeNode: string;
  /** Why WebGPU runs where it runs, or why it is unavailable. */
  webgpu: string;
}

export interface NodeBenchResult {
  machine: Machine;
  webgpuUnavailable: string | null;
  results: CaseBackendMeasurements[];
  /** Columns not run, and why. */
  skipped: { column: string; reason: string }[];
  summaries: ColumnSummary[];
  rows: NodeRow[];
  table: string;
  totalSeconds: number;
}

function onnxruntimeNodeVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.resolve(HERE, '../../node_modules/onnxruntime-node/package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The case's model set on disk (tiny-sd: generated into `scratch`; bench-sd: the cached generator output). */
async function prepareModel(c: NodeCase, scratch: string): Promise<NodeModel> {
  if (c === BENCH_SET) {
    const { dir, files } = await ensureBenchModel();
    return { id: BENCH_SET, dir, files };
  }
  const manifest = await generateTinyModels(scratch);
  return { id: c, dir: path.join(scratch, c), files: manifest[c].files };
}

/** Measures the selected cases and backends; writes nothing but the model sets' scratch folder (removed after). */
export async function measureNodeBench(options: NodeBenchOptions): Promise<NodeBenchResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  // ORT warns on every WebGPU session that shape ops run on the CPU, which is by design; keep real errors
  ortNode.env.logLevel = 'error';
  const webgpuUnavailable = options.backends.includes('webgpu') ? await nodeWebgpuUnavailableReason() : null;
  const webgpuReason = webgpuUnavailable
    ? `unavailable: ${webgpuUnavailable}`
    : `onnxruntime-node WebGPU EP (Dawn) on the Vulkan driver ${process.env.VK_ICD_FILENAMES ?? '(the system default)'}${softwareGpu() ? ': SwiftShader, a CPU emulation of a GPU' : ''}`;
  const machine: Machine = {
    os: `${type()} ${release()}`,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    onnxruntimeNode: onnxruntimeNodeVersion(),
    webgpu: options.backends.includes('webgpu') ? webgpuReason : 'not asked for',
  };
  const results: CaseBackendMeasurements[] = [];
  const skipped: NodeBenchResult['skipped'] = [];
  const scratch = await mkdtemp(path.join(tmpdir(), 'sd-node-bench-'));
  try {
    // TAESD's decoder, as the app ships it, for live previews (needs the shared fixture; else linear previews)
    const taesdEntry = await generateTaesd(scratch);
    const taesd: NodeModel | null = taesdEntry ? { id: TAESD_MODEL_ID, dir: path.join(scratch, TAESD_MODEL_ID), files: taesdEntry.files } : null;
    if (!taesd) log('TAESD fixture not found: live previews use the linear approximation only');
    for (const c of options.cases) {
      let model: NodeModel | null = null;
      for (const backend of options.backends) {
        const column = columnName({ caseId: c, backend });
        if (backend === 'webgpu' && webgpuUnavailable) {
          skipped.push({ column, reason: `WebGPU unavailable: ${webgpuUnavailable}` });
          continue;
        }
        let plan = defaultPlan(c, backend);
        if (typeof plan === 'string' && options.forceSlow) plan = BENCH_SD_SWIFTSHADER;
        if (typeof plan === 'string') {
          skipped.push({ column, reason: plan });
          log(`\n${column}: skipped (${plan})`);
          continue;
        }
        plan = { ...plan, ...options.plan };
        model ??= await prepareModel(c, scratch);
        log(`\n${column}: ${plan.size}x${plan.size}, ${plan.steps} steps, ${plan.coldLoads} cold + ${plan.warmLoads} warm loads, ${plan.runs} run(s) per kind`);
        results.push(await measureCaseBackend({ model, taesd, backend, backendReason: backend === 'webgpu' ? webgpuReason : 'onnxruntime-node CPU EP', plan, log }));
        log(`  ${column} done in ${results[results.length - 1].totalSeconds.toFixed(0)} s`);
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const summaries = results.map(summarizeColumn);
  const rows = buildNodeRows(results, summaries);
  const table = formatTable(rows, summaries.map((s) => s.column));
  return { machine, webgpuUnavailable, results, skipped, summaries, rows, table, totalSeconds: (performance.now() - started) / 1000 };
}

interface Args {
  cases: NodeCase[];
  backends: NodeBackend[];
  plan: Partial<NodePlan>;
  forceSlow: boolean;
  /** Whether the quantize case runs (by default, or as --case=quantize). */
  quantize: boolean;
}

function positiveInt(name: string, value: string, multipleOf = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0 || n % multipleOf !== 0) throw new Error(`--${name} takes a positive integer${multipleOf > 1 ? ` multiple of ${multipleOf}` : ''}, not ${value}`);
  return n;
}

export function parseNodeArgs(argv: string[]): Args {
  const args: Args = { cases: [...NODE_CASES], backends: [...BACKENDS], plan: {}, forceSlow: false, quantize: true };
  for (const a of argv) {
    const [flag, value = ''] = a.split('=', 2);
    if (flag === '--node') continue;
    if (flag === '--case') {
      if (value === QUANT_CASE) {
        args.cases = [];
        args.quantize = true;
        continue;
      }
      if (!(NODE_CASES as readonly string[]).includes(value)) throw new Error(`--case takes ${[...NODE_CASES, QUANT_CASE].join(' or ')}, not ${value}`);
      args.cases = [value as NodeCase];
      args.quantize = false;
    } else if (flag === '--only') {
      if (!(BACKENDS as string[]).includes(value)) throw new Error(`--only takes ${BACKENDS.join(' or ')}, not ${value}`);
      args.backends = [value as NodeBackend];
    } else if (flag === '--size') {
      args.plan.size = positiveInt('size', value, 8);
    } else if (flag === '--steps') {
      args.plan.steps = positiveInt('steps', value);
    } else {
      throw new Error(`unknown option ${a} (the Node bench takes --case=, --only=, --size=, --steps=)`);
    }
  }
  // a slow plan runs only when both its case and its backend were named
  args.forceSlow = argv.some((a) => a.startsWith('--case=')) && argv.some((a) => a.startsWith('--only='));
  return args;
}

/**
 * onnxruntime-node finds SwiftShader's Vulkan driver only through variables read when the process
 * starts (as tools/run-tests.ts sets them for vitest): without them, run this same command again in a
 * child that has them (and --expose-gc, for clean memory baselines). Resolves with the child's exit
 * code, or null when this process should measure itself.
 */
async function reexecWithGpuEnv(): Promise<number | null> {
  if (process.env[CHILD_MARK] || process.env.VK_ICD_FILENAMES || !existsSync(SWIFTSHADER_ICD) || !process.argv[1]) return null;
  const env = {
    ...process.env,
    [CHILD_MARK]: '1',
    VK_ICD_FILENAMES: SWIFTSHADER_ICD,
    LD_LIBRARY_PATH: [CHROMIUM_LIBS, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit', env });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * The quantize case's plans: bench-sd's size on the CPU (32x32 latents, the guided step's batch-2
 * call, ~0.3 s); on SwiftShader a call takes ~12 s even at 8x8 and batch 1, so WebGPU runs only when
 * asked for by name (--case=quantize --only=webgpu), with one timed call per UNet.
 */
function quantPlan(backend: NodeBackend, forceSlow: boolean): QuantPlan | string {
  if (backend === 'cpu') return { latent: BENCH_SD_SIZE / 8, batch: 2, warmups: 1, runs: 5 };
  if (!softwareGpu()) return { latent: BENCH_SD_SIZE / 8, batch: 2, warmups: 1, runs: 3 };
  if (forceSlow) return { latent: 8, batch: 1, warmups: 1, runs: 1, note: 'SwiftShader: 8x8 latents, batch 1, one timed call per UNet' };
  return 'not run by default on SwiftShader (~12 s per UNet call at 8x8 latents, five UNets, each with a warm-up call): ask for it with --case=quantize --only=webgpu (~3 minutes)';
}

async function quantNodeBench(args: Args, log: (line: string) => void): Promise<{ columns: QuantColumn[]; rows: NodeRow[]; table: string; skipped: { column: string; reason: string }[] }> {
  log('\nquantize: bench-sd and its MatMulNBits copies (tools/quantize)…');
  const models = await ensureQuantModels(log);
  const columns: QuantColumn[] = [];
  const skipped: { column: string; reason: string }[] = [];
  const webgpuUnavailable = args.backends.includes('webgpu') ? await nodeWebgpuUnavailableReason() : null;
  for (const backend of args.backends) {
    const column = `bench-sd ${backend === 'cpu' ? 'CPU' : 'WebGPU'} (Node)`;
    if (backend === 'webgpu' && webgpuUnavailable) {
      skipped.push({ column, reason: `WebGPU unavailable: ${webgpuUnavailable}` });
      continue;
    }
    const plan = quantPlan(backend, args.forceSlow);
    if (typeof plan === 'string') {
      skipped.push({ column, reason: plan });
      continue;
    }
    log(`\nquantize on ${backend}: ${plan.latent}x${plan.latent} latents, batch ${plan.batch}, ${plan.warmups} warm-up + ${plan.runs} timed call(s) per UNet`);
    columns.push(await measureQuantNode(models, backend, plan, log));
  }
  const rows = columns.length > 0 ? buildQuantRows(models, columns) : [];
  return { columns, rows, table: columns.length > 0 ? formatTable(rows, columns.map((c) => c.column)) : '', skipped };
}

export async function runNodeBench(argv: string[]): Promise<void> {
  const args = parseNodeArgs(argv);
  const code = await reexecWithGpuEnv();
  if (code !== null) {
    process.exitCode = code;
    return;
  }
  // ORT warns on every WebGPU session that shape ops run on the CPU, which is by design; keep real errors
  ortNode.env.logLevel = 'error';
  const started = performance.now();
  const r =
    args.cases.length > 0
      ? await measureNodeBench({ cases: args.cases, backends: args.backends, plan: args.plan, forceSlow: args.forceSlow })
      : null;
  const quant = args.quantize ? await quantNodeBench(args, (line) => console.log(line)) : null;
  if (r) {
    const m = r.machine;
    console.log(`\nNode bench: ${m.os}, ${m.cpus}, ${m.memoryGiB} GiB, Node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}`);
    console.log(`  WebGPU: ${m.webgpu}`);
    for (const s of r.skipped) console.log(`  not run: ${s.column}: ${s.reason}`);
    if (r.results.length > 0) {
      console.log(`\n${r.table}`);
      console.log('\nLoops and why:');
      for (const c of r.summaries) {
        for (const kind of ['guided', 'unguided', 'naive'] as const) {
          const k = c.runs[kind];
          if (k) console.log(`  ${c.column} ${kind}: ${k.mode}: ${k.reason}`);
        }
      }
    }
  }
  if (quant) {
    console.log('');
    for (const s of quant.skipped) console.log(`  not run: ${s.column}: ${s.reason}`);
    for (const c of quant.columns) if (c.plan.note) console.log(`  note (${c.column}): ${c.plan.note}`);
    if (quant.table) console.log(`\nQuantized UNets (bench-sd, MatMulNBits; onnxruntime-node):\n\n${quant.table}`);
  }
  const date = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/bench-node-${date}.json`;
  const quantJson = quant ? { rows: quant.rows, skipped: quant.skipped, raw: quantRaw(quant.columns) } : undefined;
  let engine = {};
  if (r) {
    const { table: _table, ...rest } = r;
    engine = rest;
  }
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), argv, ...engine, quantize: quantJson }, null, 2)}\n`);
  console.log(`\nWrote ${file} (the Node bench took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
