/** One backend's measurements in the real app: cold and warm loads, then timed text2img runs. */
import type { Browser, Page } from 'playwright-core';
import { probeScript, type PageProbe, type StepMark } from './page-probes.ts';
import { watchWorkerHeap, type HeapPeak, type WorkerHeapWatch } from './worker-heap.ts';

export type BenchBackend = 'webgpu' | 'wasm';

export interface BackendPlan {
  backend: BenchBackend;
  coldLoads: number;
  /** Reloads of the last cold page (same context: IndexedDB and the service worker's cache are warm). */
  warmLoads: number;
  /** Untimed runs first: shader compilation and lazy set-up (TAESD preview) happen there. */
  warmupSteps: number;
  runs: number;
  steps: number;
  size: number;
  guidanceScale: number;
  /** Why this plan differs from the full one, printed with the table. */
  note?: string;
}

export interface LoadSample {
  /** ms from navigation start until body[data-ready="true"]. */
  readyMs: number;
  heapPeakBytes: number | null;
  /** The engine worker's peak during the load (DevTools protocol); null when it could not be read. */
  workerHeap: HeapPeak | null;
}

export interface RunSample {
  generationTime: number;
  secondsPerStep: number;
  denoiseSeconds: number;
  /** Intervals between successive "step k of N" in the page, ms (steps 2..N). */
  stepIntervalsMs: number[];
  /** From the call until "step 1 of N": request handling, text encoding, the first step. */
  firstStepMs: number | null;
  /** From the last "step N of N" until the response: VAE decode, PNG encoding, the answer's trip. */
  afterLoopMs: number | null;
  /** Longest main-thread task that started during the run, ms; 0 when none passed the 50 ms long-task bar. */
  longestTaskMs: number;
}

export interface BackendMeasurements {
  plan: BackendPlan;
  backendReason: string;
  shaderF16: boolean;
  cold: LoadSample[];
  warm: LoadSample[];
  runs: RunSample[];
}

export const MODEL_ID = 'tiny-sd';

async function waitReady(page: Page, watch: WorkerHeapWatch): Promise<LoadSample> {
  await page.waitForFunction(() => document.body?.dataset.ready !== undefined, undefined, { timeout: 180_000 });
  const state = await page.evaluate(() => ({ ready: document.body.dataset.ready, backend: document.getElementById('backend')?.textContent ?? '' }));
  if (state.ready !== 'true') throw new Error(`the app did not start: ${state.backend}`);
  const probe = await page.evaluate(() => window.__benchProbe as PageProbe);
  if (probe.readyAt === null) throw new Error('the probe missed the ready signal');
  return { readyMs: probe.readyAt, heapPeakBytes: probe.heapPeakUntilReady, workerHeap: watch.peak() };
}

function request(plan: BackendPlan, steps: number): Record<string, unknown> {
  const size = String(plan.size);
  return {
    key: '', prompt: 'a cat sitting on a bench', negative_prompt: null,
    width: size, height: size, samples: '1', num_inference_steps: String(steps),
    safety_checker: 'no', enhance_prompt: 'no', guidance_scale: plan.guidanceScale,
    seed: 42, webhook: null, track_id: null,
  };
}

interface PageRun {
  status: string;
  message: unknown;
  generationTime: number;
  timings: { denoise_seconds: number; seconds_per_step: number } | null;
  backend: unknown;
  t0: number;
  t1: number;
  steps: StepMark[];
  longTasks: { start: number; duration: number }[];
}

async function runOnce(page: Page, req: Record<string, unknown>): Promise<PageRun> {
  return page.evaluate(async (r) => {
    const probe = window.__benchProbe!;
    probe.steps = [];
    const t0 = performance.now();
    const res = (await window.sdapi!.text2img(r)) as unknown as Record<string, unknown>;
    const t1 = performance.now();
    // long-task entries arrive after the task ends: give the observer a turn
    await new Promise((done) => setTimeout(done, 50));
    const meta = (res.meta ?? {}) as Record<string, unknown>;
    return {
      status: String(res.status),
      message: res.message ?? null,
      generationTime: Number(res.generationTime ?? NaN),
      timings: (meta.timings ?? null) as PageRun['timings'],
      backend: meta.backend ?? null,
      t0,
      t1,
      steps: probe.steps,
      longTasks: probe.longTasks.filter((t) => t.start >= t0 && t.start <= t1),
    };
  }, req);
}

export async function measureBackend(browser: Browser, baseUrl: string, plan: BackendPlan, log: (s: string) => void): Promise<BackendMeasurements> {
  const url = `${baseUrl}?model=${MODEL_ID}`;
  const cold: LoadSample[] = [];
  const warm: LoadSample[] = [];
  let page: Page | null = null;
  let watch: WorkerHeapWatch | null = null;
  for (let i = 0; i < plan.coldLoads; i++) {
    if (page) await page.context().close();
    await watch?.close();
    // A fresh context: no IndexedDB, no service worker, no HTTP cache. Everything comes from the network.
    const context = await browser.newContext();
    page = await context.newPage();
    await page.addInitScript({ content: probeScript() });
    watch = await watchWorkerHeap(page);
    await page.goto(url);
    cold.push(await waitReady(page, watch));
    log(`  cold load ${i + 1}/${plan.coldLoads}: ${(cold.at(-1)!.readyMs / 1000).toFixed(2)} s`);
  }
  if (!page || !watch) throw new Error('coldLoads must be at least 1');
  for (let i = 0; i < plan.warmLoads; i++) {
    watch.reset();
    await page.reload();
    warm.push(await waitReady(page, watch));
    log(`  warm load ${i + 1}/${plan.warmLoads}: ${(warm.at(-1)!.readyMs / 1000).toFixed(2)} s`);
  }
  // its polling would cost the runs time
  await watch.close();
  const choice = await page.evaluate(() => window.sdapi!.backend);
  if (!choice || choice.backend !== plan.backend) throw new Error(`expected ${plan.backend}, the app runs on ${choice?.backend ?? 'nothing'}: ${choice?.reason ?? ''}`);

  if (plan.warmupSteps > 0) {
    const w = await runOnce(page, request(plan, plan.warmupSteps));
    if (w.status !== 'success') throw new Error(`warm-up run failed: ${JSON.stringify(w.message)}`);
    log(`  warm-up run (${plan.warmupSteps} steps): ${w.generationTime.toFixed(2)} s`);
  }
  const runs: RunSample[] = [];
  for (let i = 0; i < plan.runs; i++) {
    const r = await runOnce(page, request(plan, plan.steps));
    if (r.status !== 'success' || !r.timings) throw new Error(`run ${i + 1} failed: ${JSON.stringify(r.message)}`);
    if (r.backend !== plan.backend) throw new Error(`run ${i + 1} ran on ${String(r.backend)}, not ${plan.backend}`);
    const stepIntervalsMs: number[] = [];
    for (let k = 1; k < r.steps.length; k++) {
      if (r.steps[k].step === r.steps[k - 1].step + 1) stepIntervalsMs.push(r.steps[k].t - r.steps[k - 1].t);
    }
    runs.push({
      generationTime: r.generationTime,
      secondsPerStep: r.timings.seconds_per_step,
      denoiseSeconds: r.timings.denoise_seconds,
      stepIntervalsMs,
      firstStepMs: r.steps.length > 0 ? r.steps[0].t - r.t0 : null,
      afterLoopMs: r.steps.length > 0 ? r.t1 - r.steps[r.steps.length - 1].t : null,
      longestTaskMs: Math.max(0, ...r.longTasks.map((t) => t.duration)),
    });
    log(`  run ${i + 1}/${plan.runs} (${plan.steps} steps): ${r.generationTime.toFixed(2)} s, ${r.timings.seconds_per_step} s/step`);
  }
  await page.context().close();
  return { plan, backendReason: choice.reason, shaderF16: choice.shaderF16, cold, warm, runs };
}
