/**
 * `npm run bench`: the real app in Debian's Chromium, on WebGPU (SwiftShader here) and on WASM, for the
 * case tiny-sd. Prints a table and writes it, with the raw samples and the machine, to
 * bench-results/bench-<date>.json. Not part of `npm test`: its figures are for reading, not asserting.
 *
 *   npm run bench                    both backends
 *   npm run bench -- --only=wasm     one backend
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type } from 'node:os';
import { chromium } from 'playwright-core';
import { CHROMIUM_HELP, chromiumArgs, findChromium } from '../chromium.ts';
import { measureBackend, MODEL_ID, type BackendMeasurements, type BackendPlan, type BenchBackend } from './measure.ts';
import { buildRows, formatTable, summarizeBackend, type BackendSummary } from './report.ts';
import { buildApp, servePreview } from './server.ts';

/**
 * The full plan on WASM. SwiftShader runs WebGPU on the CPU at seconds per UNet call, so WebGPU gets
 * fewer loads and runs, to keep the whole bench near 6 minutes on 2 cores.
 */
const PLANS: Record<BenchBackend, BackendPlan> = {
  wasm: { backend: 'wasm', coldLoads: 5, warmLoads: 5, warmupSteps: 2, runs: 5, steps: 20, size: 512, guidanceScale: 7.5 },
  webgpu: {
    backend: 'webgpu', coldLoads: 2, warmLoads: 2, warmupSteps: 0, runs: 2, steps: 20, size: 512, guidanceScale: 7.5,
    note: 'WebGPU runs on SwiftShader (a CPU emulation of a GPU) here, ~2 s per step and ~25 s per VAE decode at 512x512: ' +
      '2 cold loads, 2 warm loads and two 20-step runs without a warm-up run (WASM: 5 of each, after a warm-up), to keep the bench near 6 minutes',
  },
};

function parseOnly(): BenchBackend[] {
  const arg = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  if (!arg) return ['webgpu', 'wasm'];
  if (arg !== 'webgpu' && arg !== 'wasm') throw new Error(`--only takes webgpu or wasm, not ${arg}`);
  return [arg];
}

async function main(): Promise<void> {
  const executablePath = findChromium();
  if (!executablePath) {
    console.error(CHROMIUM_HELP);
    process.exit(1);
  }
  const backends = parseOnly();
  const started = Date.now();
  console.log('Building the app…');
  const preview = await servePreview(buildApp());
  const results: BackendMeasurements[] = [];
  let browserVersion = '';
  try {
    for (const backend of backends) {
      const plan = PLANS[backend];
      console.log(`\n${backend}: ${plan.note ?? 'full plan'}`);
      // Exact heap figures: without this flag Chromium rounds performance.memory to coarse buckets.
      const browser = await chromium.launch({ executablePath, headless: true, args: [...chromiumArgs(backend === 'webgpu'), '--enable-precise-memory-info'] });
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

  const summaries = new Map<BenchBackend, BackendSummary>(results.map((m) => [m.plan.backend, summarizeBackend(m)]));
  const rows = buildRows(results, summaries);
  const machine = {
    os: `${type()} ${release()}`,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    chromium: browserVersion,
    adapters: Object.fromEntries(results.map((m) => [m.plan.backend, `${m.backendReason}; shader-f16: ${m.shaderF16 ? 'yes' : 'no'}`])),
  };
  const table = formatTable(rows, results.map((m) => m.plan.backend));
  console.log(`\nBench: ${MODEL_ID}, ${machine.os}, ${machine.cpus}, Chromium ${machine.chromium}`);
  for (const [b, a] of Object.entries(machine.adapters)) console.log(`  ${b}: ${a}`);
  for (const m of results) if (m.plan.note) console.log(`  note (${m.plan.backend}): ${m.plan.note}`);
  console.log(`\n${table}`);
  const date = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/bench-${date}.json`;
  const totalSeconds = (Date.now() - started) / 1000;
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), case: MODEL_ID, machine, totalSeconds, rows, summaries: Object.fromEntries(summaries), raw: results }, null, 2)}\n`);
  console.log(`\nWrote ${file} (the bench took ${totalSeconds.toFixed(0)} s)`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
