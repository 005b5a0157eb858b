/** One backend's measurements in the real app: cold and warm loads, then timed text2img runs. */
import type { Browser, Page } from 'playwright-core';
import { probeScript, type PageProbe, type StepMark } from './page-probes.ts';
import { watchWorkerHeap, type HeapPeak, type WorkerHeapWatch } from './worker-heap.ts';

export type BenchBackend = 'webgpu' | 'wasm';

/** The bench's model cases: the tiny test set, and bench-sd (SD 1.5's UNet architecture at ~100-200 M parameters). */
export type BenchCase = 'tiny-sd' | 'bench-sd';

export interface BackendPlan {
  case: BenchCase;
  backend: BenchBackend;
  coldLoads: number;
  /** Reloads of the last cold page (same context: IndexedDB and the service worker's cache are warm). */
  warmLoads: number;
  /** Untimed runs first: shader compilation and lazy set-up (TAESD preview) happen there. */
  warmupSteps: number;
  runs: number;
  /** Runs at guidance_scale 1 (batch 1): the guided step's cost relative to an unguided one. */
  unguidedRuns: number;
  /** Runs of the naive baseline (?loop=naive: two batch-1 UNet calls, read-back every step), after the same warm-up. */
  naiveRuns: number;
  steps: number;
  size: number;
  guidanceScale: number;
  /** Why this plan differs from the full one, printed with the table. */
  note?: string;
}

/** The engine's own load figures (LoadedModelInfo.loadTimings), seconds. */
export interface EngineLoad {
  readSeconds: number;
  /** Session creation from the bytes in memory: the in-memory reference. */
  createSeconds: number;
  largestFileBytes: number;
}

/** meta.timings.loop as the API reports it. */
export interface LoopMeta {
  mode: string;
  reason: string;
  steps: number;
  loop_seconds: number;
  session_run_seconds: number;
  overhead_share: number;
  upload_bytes_per_step: number;
  readback_bytes_per_step: number;
  preview_steps: number;
  readback_bytes_per_step_outside_previews: number;
}

export type RunKind = 'guided' | 'unguided' | 'naive';

export interface LoadSample {
  /** ms from navigation start until body[data-ready="true"]. */
  readyMs: number;
  engine: EngineLoad | null;
  heapPeakBytes: number | null;
  /** The engine worker's peak during the load (DevTools protocol); null when it could not be read. */
  workerHeap: HeapPeak | null;
}

export interface RunSample {
  kind: RunKind;
  loop: LoopMeta | null;
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

async function waitReady(page: Page, watch: WorkerHeapWatch): Promise<LoadSample> {
  await page.waitForFunction(() => document.body?.dataset.ready !== undefined, undefined, { timeout: 600_000 });
  const state = await page.evaluate(() => ({ ready: document.body.dataset.ready, backend: document.getElementById('backend')?.textContent ?? '' }));
  if (state.ready !== 'true') throw new Error(`the app did not start: ${state.backend}`);
  const probe = await page.evaluate(() => window.__benchProbe as PageProbe);
  if (probe.readyAt === null) throw new Error('the probe missed the ready signal');
  const workerHeap = watch.peak();
  // the model is loaded by now: prepare() answers with its LoadedModelInfo, load timings included
  const info = (await page.evaluate(() => window.sdapi!.prepare())) as unknown as { loadTimings?: EngineLoad } | null;
  return { readyMs: probe.readyAt, engine: info?.loadTimings ?? null, heapPeakBytes: probe.heapPeakUntilReady, workerHeap };
}

function request(plan: BackendPlan, steps: number, guidanceScale = plan.guidanceScale): Record<string, unknown> {
  const size = String(plan.size);
  return {
    key: '', prompt: 'a cat sitting on a bench', negative_prompt: null,
    width: size, height: size, samples: '1', num_inference_steps: String(steps),
    safety_checker: 'no', enhance_prompt: 'no', guidance_scale: guidanceScale,
    seed: 42, webhook: null, track_id: null,
  };
}

interface PageRun {
  status: string;
  message: unknown;
  generationTime: number;
  timings: { denoise_seconds: number; seconds_per_step: number; loop?: LoopMeta } | null;
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

/** Timed runs of one kind on a ready page; the warm-up (if any) is the caller's. */
async function timedRuns(page: Page, plan: BackendPlan, kind: RunKind, count: number, log: (s: string) => void): Promise<RunSample[]> {
  const runs: RunSample[] = [];
  for (let i = 0; i < count; i++) {
    const r = await runOnce(page, request(plan, plan.steps, kind === 'unguided' ? 1 : plan.guidanceScale));
    if (r.status !== 'success' || !r.timings) throw new Error(`${kind} run ${i + 1} failed: ${JSON.stringify(r.message)}`);
    if (r.backend !== plan.backend) throw new Error(`${kind} run ${i + 1} ran on ${String(r.backend)}, not ${plan.backend}`);
    const stepIntervalsMs: number[] = [];
    for (let k = 1; k < r.steps.length; k++) {
      if (r.steps[k].step === r.steps[k - 1].step + 1) stepIntervalsMs.push(r.steps[k].t - r.steps[k - 1].t);
    }
    const loop = r.timings.loop ?? null;
    runs.push({
      kind,
      loop,
      generationTime: r.generationTime,
      secondsPerStep: r.timings.seconds_per_step,
      denoiseSeconds: r.timings.denoise_seconds,
      stepIntervalsMs,
      firstStepMs: r.steps.length > 0 ? r.steps[0].t - r.t0 : null,
      afterLoopMs: r.steps.length > 0 ? r.t1 - r.steps[r.steps.length - 1].t : null,
      longestTaskMs: Math.max(0, ...r.longTasks.map((t) => t.duration)),
    });
    log(`  ${kind} run ${i + 1}/${count} (${plan.steps} steps): ${r.generationTime.toFixed(2)} s, loop ${loop?.mode ?? '?'}, overhead ${loop ? (loop.overhead_share * 100).toFixed(1) : '?'}%`);
  }
  return runs;
}

async function warmUp(page: Page, plan: BackendPlan, log: (s: string) => void): Promise<void> {
  if (plan.warmupSteps <= 0) return;
  const w = await runOnce(page, request(plan, plan.warmupSteps));
  if (w.status !== 'success') throw new Error(`warm-up run failed: ${JSON.stringify(w.message)}`);
  log(`  warm-up run (${plan.warmupSteps} steps): ${w.generationTime.toFixed(2)} s`);
}

export async function measureBackend(browser: Browser, baseUrl: string, plan: BackendPlan, log: (s: string) => void): Promise<BackendMeasurements> {
  const url = `${baseUrl}?model=${plan.case}`;
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
    const e = warm.at(-1)!.engine;
    log(`  warm load ${i + 1}/${plan.warmLoads}: ${(warm.at(-1)!.readyMs / 1000).toFixed(2)} s${e ? ` (engine: read ${e.readSeconds.toFixed(2)} s + sessions ${e.createSeconds.toFixed(2)} s)` : ''}`);
  }
  // its polling would cost the runs time
  await watch.close();
  const choice = await page.evaluate(() => window.sdapi!.backend);
  if (!choice || choice.backend !== plan.backend) throw new Error(`expected ${plan.backend}, the app runs on ${choice?.backend ?? 'nothing'}: ${choice?.reason ?? ''}`);

  await warmUp(page, plan, log);
  const runs = [
    ...(await timedRuns(page, plan, 'guided', plan.runs, log)),
    ...(await timedRuns(page, plan, 'unguided', plan.unguidedRuns, log)),
  ];
  if (plan.naiveRuns > 0) {
    // the same context (weights warm in IndexedDB), the engine started with the naive loop
    await page.goto(`${url}&loop=naive`);
    await page.waitForFunction(() => document.body?.dataset.ready !== undefined, undefined, { timeout: 600_000 });
    await warmUp(page, plan, log);
    runs.push(...(await timedRuns(page, plan, 'naive', plan.naiveRuns, log)));
  }
  await page.context().close();
  return { plan, backendReason: choice.reason, shaderF16: choice.shaderF16, cold, warm, runs };
}
