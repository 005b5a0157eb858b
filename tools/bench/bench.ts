/**
 * `npm run bench`: the real app in Debian's Chromium, on WebGPU (SwiftShader here) and on WASM, for the
 * cases tiny-sd and bench-sd. Prints a table and writes it, with the raw samples and the machine, to
 * bench-results/bench-<date>.json. Not part of `npm test`: its figures are for reading, not asserting.
 *
 *   npm run bench                         both cases, both backends
 *   npm run bench -- --only=wasm          one backend
 *   npm run bench -- --case=tiny-sd       one case
 *   npm run bench -- --node               the same cases on the engine under onnxruntime-node (no browser)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type } from 'node:os';
import { chromium } from 'playwright-core';
import { CHROMIUM_HELP, chromiumArgs, findChromium } from '../chromium.ts';
import { measureBackend, type BackendMeasurements, type BackendPlan, type BenchBackend, type BenchCase } from './measure.ts';
import { buildRows, columnOf, formatTable, summarizeBackend, type BackendSummary } from './report.ts';
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

function option(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function selectedPlans(): BackendPlan[] {
  const only = option('only');
  const which = option('case');
  if (only && only !== 'webgpu' && only !== 'wasm') throw new Error(`--only takes webgpu or wasm, not ${only}`);
  if (which && which !== 'tiny-sd' && which !== 'bench-sd') throw new Error(`--case takes tiny-sd or bench-sd, not ${which}`);
  return PLANS.filter((p) => (!only || p.backend === (only as BenchBackend)) && (!which || p.case === (which as BenchCase)));
}

async function browserBench(): Promise<void> {
  const executablePath = findChromium();
  if (!executablePath) {
    console.error(CHROMIUM_HELP);
    process.exit(1);
  }
  const plans = selectedPlans();
  const started = Date.now();
  console.log('Building the app…');
  const preview = await servePreview(await buildApp({ benchModel: plans.some((p) => p.case === 'bench-sd') }));
  const results: BackendMeasurements[] = [];
  let browserVersion = '';
  try {
    for (const plan of plans) {
      console.log(`\n${plan.case} on ${plan.backend}: ${plan.note ?? 'full plan'}`);
      // Exact heap figures: without this flag Chromium rounds performance.memory to coarse buckets.
      const browser = await chromium.launch({ executablePath, headless: true, args: [...chromiumArgs(plan.backend === 'webgpu'), '--enable-precise-memory-info'] });
      try {
        browserVersion = browser.version();
        results.push(await measureBackend(browser, preview.url, plan, (s) => console.log(s)));
      } finally {
        await browser.close();
      }
    }
  } finally {
    preview.stop();
  }

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
  const table = formatTable(rows, results.map(columnOf));
  console.log(`\nBench: ${machine.os}, ${machine.cpus}, Chromium ${machine.chromium}`);
  for (const [b, a] of Object.entries(machine.adapters)) console.log(`  ${b}: ${a}`);
  for (const m of results) if (m.plan.note) console.log(`  note (${columnOf(m)}): ${m.plan.note}`);
  const loopReasons = new Map(results.map((m) => [columnOf(m), summaries.get(columnOf(m))!.loopReason]));
  for (const [c, r] of loopReasons) console.log(`  loop (${c}): ${r}`);
  console.log(`\n${table}`);
  const date = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/bench-${date}.json`;
  const totalSeconds = (Date.now() - started) / 1000;
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, totalSeconds, rows, summaries: Object.fromEntries(summaries), raw: results }, null, 2)}\n`);
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
