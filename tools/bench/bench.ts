/**
 * `npm run bench`: the real app in Debian's Chromium, on WebGPU (SwiftShader here) and on WASM, for the
 * cases tiny-sd and bench-sd. Prints a table and writes it, with the raw samples and the machine, to
 * bench-results/bench-<date>.json. Not part of `npm test`: its figures are for reading, not asserting.
 *
 *   npm run bench                         both cases, both backends
 *   npm run bench -- --only=wasm          one backend
 *   npm run bench -- --case=tiny-sd       one case (tiny-sd | bench-sd | quantize)
 *   npm run bench -- --node               the same cases on the engine under onnxruntime-node (no browser)
 *
 * The quantize case times single UNet calls of bench-sd and its MatMulNBits copies (tools/quantize) on
 * onnxruntime-web directly, without the app (quant-browser.ts), and prints a table of its own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type } from 'node:os';
import { chromium } from 'playwright-core';
import { CHROMIUM_HELP, chromiumArgs, findChromium } from '../chromium.ts';
import { measureBackend, type BackendMeasurements, type BackendPlan, type BenchBackend, type BenchCase } from './measure.ts';
import { measureQuantBrowser } from './quant-browser.ts';
import type { QuantColumn, QuantPlan } from './quant-measure.ts';
import { ensureQuantModels, type QuantModel } from './quant-models.ts';
import { buildQuantRows, quantRaw } from './quant-report.ts';
import { buildRows, columnOf, formatTable, summarizeBackend, type BackendSummary, type Row } from './report.ts';
import { buildApp, servePreview } from './server.ts';

const SWIFTSHADER =
  'WebGPU runs on SwiftShader (a CPU emulation of a GPU) here, seconds per UNet call: fewer loads and runs than on WASM, and no warm-up run';

/**
 * The plans. SwiftShader runs WebGPU on the CPU, so WebGPU gets fewer loads and runs; bench-sd (a ~600 MB
 * UNet) runs at a smaller size and once per kind, to keep the whole bench within about half an hour on 2 cores.
 */
const PLANS: BackendPlan[] = [
  { case: 'tiny-sd', backend: 'webgpu', coldLoads: 2, warmLoads: 2, warmupSteps: 0, runs: 2, unguidedRuns: 1, naiveRuns: 1, steps: 20, size: 512, guidanceScale: 7.5, note: SWIFTSHADER },
  { case: 'tiny-sd', backend: 'wasm', coldLoads: 3, warmLoads: 3, warmupSteps: 2, runs: 3, unguidedRuns: 3, naiveRuns: 2, steps: 20, size: 512, guidanceScale: 7.5 },
  {
    case: 'bench-sd', backend: 'webgpu', coldLoads: 1, warmLoads: 1, warmupSteps: 0, runs: 1, unguidedRuns: 1, naiveRuns: 1, steps: 3, size: 64, guidanceScale: 7.5,
    note: `${SWIFTSHADER}; bench-sd's batch-2 UNet call takes ~55 s on SwiftShader at 16x16 latents, so WebGPU runs it at 64x64 (8x8 latents) for 3 steps: whole-image figures are for 3 steps`,
  },
  {
    case: 'bench-sd', backend: 'wasm', coldLoads: 1, warmLoads: 2, warmupSteps: 2, runs: 1, unguidedRuns: 1, naiveRuns: 1, steps: 20, size: 128, guidanceScale: 7.5,
    note: 'bench-sd at 128x128 (16x16 latents): a 20-step run takes tens of seconds on 2 cores',
  },
];

/**
 * The quantize case's plans. WASM runs the guided step's batch-2 call at 16x16 latents, as the
 * bench-sd WASM column does (about a minute in all). WebGPU on SwiftShader: the fp32 UNet's call
 * takes ~12 s at 8x8 latents and batch 1 (the app's unguided step), block-128 MatMulNBits UNets run
 * ~4x slower than that there, and each of the five UNets needs a warm-up call at the same shape, so
 * WebGPU gets batch 1 and one timed call per UNet: several minutes (15 with other jobs on the machine).
 */
const QUANT_PLANS: Record<BenchBackend, QuantPlan> = {
  webgpu: { latent: 8, batch: 1, warmups: 1, runs: 1, note: 'SwiftShader: 8x8 latents, batch 1, one timed call per UNet' },
  wasm: { latent: 16, batch: 2, warmups: 1, runs: 3 },
};

function option(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function selectedPlans(): BackendPlan[] {
  const only = option('only');
  const which = option('case');
  if (only && only !== 'webgpu' && only !== 'wasm') throw new Error(`--only takes webgpu or wasm, not ${only}`);
  if (which && which !== 'tiny-sd' && which !== 'bench-sd' && which !== 'quantize') throw new Error(`--case takes tiny-sd, bench-sd or quantize, not ${which}`);
  return PLANS.filter((p) => (!only || p.backend === (only as BenchBackend)) && (!which || p.case === (which as BenchCase)));
}

/** The quantize case's backends, or none when another case was asked for. */
function selectedQuantBackends(): BenchBackend[] {
  const only = option('only');
  const which = option('case');
  if (which && which !== 'quantize') return [];
  return (['webgpu', 'wasm'] as const).filter((b) => !only || b === only);
}

async function quantBench(executablePath: string, backends: BenchBackend[]): Promise<{ models: QuantModel[]; columns: QuantColumn[]; version: string }> {
  console.log('\nquantize: bench-sd and its MatMulNBits copies (tools/quantize)…');
  const models = await ensureQuantModels();
  const columns: QuantColumn[] = [];
  let version = '';
  for (const backend of backends) {
    const plan = QUANT_PLANS[backend];
    console.log(`\nquantize on ${backend}: ${plan.latent}x${plan.latent} latents, batch ${plan.batch}, ${plan.warmups} warm-up + ${plan.runs} timed call(s) per UNet`);
    const browser = await chromium.launch({ executablePath, headless: true, args: chromiumArgs(backend === 'webgpu') });
    try {
      version = browser.version();
      columns.push(await measureQuantBrowser(browser, models, backend, plan, (s) => console.log(s)));
    } finally {
      await browser.close();
    }
  }
  return { models, columns, version };
}

/** The app's cases (tiny-sd, bench-sd): the app built and served, one browser per plan. */
async function appBench(executablePath: string, plans: BackendPlan[]): Promise<{ results: BackendMeasurements[]; version: string }> {
  console.log('Building the app…');
  const preview = await servePreview(await buildApp({ benchModel: plans.some((p) => p.case === 'bench-sd') }));
  const results: BackendMeasurements[] = [];
  let version = '';
  try {
    for (const plan of plans) {
      console.log(`\n${plan.case} on ${plan.backend}: ${plan.note ?? 'full plan'}`);
      // Exact heap figures: without this flag Chromium rounds performance.memory to coarse buckets.
      const browser = await chromium.launch({ executablePath, headless: true, args: [...chromiumArgs(plan.backend === 'webgpu'), '--enable-precise-memory-info'] });
      try {
        version = browser.version();
        results.push(await measureBackend(browser, preview.url, plan, (s) => console.log(s)));
      } finally {
        await browser.close();
      }
    }
  } finally {
    preview.stop();
  }
  return { results, version };
}

async function browserBench(): Promise<void> {
  const executablePath = findChromium();
  if (!executablePath) {
    console.error(CHROMIUM_HELP);
    process.exit(1);
  }
  const plans = selectedPlans();
  const quantBackends = selectedQuantBackends();
  const started = Date.now();
  const app = plans.length > 0 ? await appBench(executablePath, plans) : { results: [], version: '' };
  const quant = quantBackends.length > 0 ? await quantBench(executablePath, quantBackends) : null;
  const results = app.results;
  const browserVersion = app.version || (quant?.version ?? '');

  const summaries = new Map<string, BackendSummary>(results.map((m) => [columnOf(m), summarizeBackend(m)]));
  const rows = buildRows(results, summaries);
  const machine = {
    os: `${type()} ${release()}`,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    chromium: browserVersion,
    adapters: Object.fromEntries(results.map((m) => [columnOf(m), `${m.backendReason}; shader-f16: ${m.shaderF16 ? 'yes' : 'no'}`])),
  };
  console.log(`\nBench: ${machine.os}, ${machine.cpus}, Chromium ${machine.chromium}`);
  for (const [b, a] of Object.entries(machine.adapters)) console.log(`  ${b}: ${a}`);
  for (const m of results) if (m.plan.note) console.log(`  note (${columnOf(m)}): ${m.plan.note}`);
  const loopReasons = new Map(results.map((m) => [columnOf(m), summaries.get(columnOf(m))!.loopReason]));
  for (const [c, r] of loopReasons) console.log(`  loop (${c}): ${r}`);
  if (results.length > 0) console.log(`\n${formatTable(rows, results.map(columnOf))}`);
  let quantRows: Row[] = [];
  if (quant) {
    quantRows = buildQuantRows(quant.models, quant.columns);
    for (const c of quant.columns) if (c.plan.note) console.log(`  note (${c.column}): ${c.plan.note}`);
    console.log(`\nQuantized UNets (bench-sd, MatMulNBits; onnxruntime-web without the app):\n\n${formatTable(quantRows, quant.columns.map((c) => c.column))}`);
  }
  const date = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/bench-${date}.json`;
  const totalSeconds = (Date.now() - started) / 1000;
  const quantJson = quant ? { rows: quantRows, raw: quantRaw(quant.columns) } : undefined;
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, totalSeconds, rows, summaries: Object.fromEntries(summaries), raw: results, quantize: quantJson }, null, 2)}\n`);
  console.log(`\nWrote ${file} (the bench took ${totalSeconds.toFixed(0)} s)`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--node')) {
    const { runNodeBench } = await import('./node-bench.ts');
    await runNodeBench(process.argv.slice(2));
    return;
  }
  await browserBench();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
