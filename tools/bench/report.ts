/**
 * The bench's table: one row per figure, one column per case and backend, each cell with its median
 * and spread, and the targets checked against the figures (met, or missed with the figure).
 */
import { formatSummary, summarize, type Summary } from './stats.ts';
import type { BackendMeasurements, LoadSample, LoopMeta, RunKind, RunSample } from './measure.ts';
import type { HeapPeak } from './worker-heap.ts';

export interface Row {
  metric: string;
  cells: Record<string, string>;
  /** How it was measured, or why it is not measured. */
  note: string;
}

export interface BackendSummary {
  stepIntervalMs: Partial<Record<RunKind, Summary | null>>;
  generationTime: Partial<Record<RunKind, Summary | null>>;
  firstStepMs: Summary | null;
  afterLoopMs: Summary | null;
  /** The guided auto-loop runs' loop figures. */
  overheadShare: Summary | null;
  uploadBytesPerStep: Summary | null;
  readbackBytesPerStep: Summary | null;
  readbackOutsidePreviews: Summary | null;
  previewSteps: Summary | null;
  loopMode: string;
  loopReason: string;
  naiveOverheadShare: Summary | null;
  naiveReadbackBytesPerStep: Summary | null;
  coldLoadSeconds: Summary | null;
  warmLoadSeconds: Summary | null;
  /** Engine figures of the warm loads: IndexedDB read + session creation, and creation alone (the in-memory reference). */
  warmEngineSeconds: Summary | null;
  inMemorySeconds: Summary | null;
  largestFileMB: number | null;
  /** Per load kind, MB: the page's JS heap, the worker's JS heap, the worker's ArrayBuffers. */
  heap: Record<'cold' | 'warm', { pageMB: Summary | null; workerMB: Summary | null; workerBuffersMB: Summary | null }>;
  longestTaskMs: Summary | null;
}

const MB = 1024 * 1024;
/** Below this the heap ratio measures the worker's fixed buffers (ORT's runtime, the app), not the model's bytes. */
const MEANINGFUL_FILE_MB = 64;

export function columnOf(m: BackendMeasurements): string {
  return `${m.plan.case} ${m.plan.backend}`;
}

function loops(runs: RunSample[], kind: RunKind): LoopMeta[] {
  return runs.filter((r) => r.kind === kind && r.loop).map((r) => r.loop!);
}

export function summarizeBackend(m: BackendMeasurements): BackendSummary {
  const heap = (loads: LoadSample[]) => {
    const workers = loads.map((l) => l.workerHeap).filter((v): v is HeapPeak => v !== null);
    return {
      pageMB: summarize(loads.map((l) => l.heapPeakBytes).filter((v): v is number => v !== null).map((b) => b / MB)),
      workerMB: summarize(workers.map((p) => p.usedBytes / MB)),
      workerBuffersMB: summarize(workers.map((p) => p.backingBytes / MB)),
    };
  };
  const byKind = <T>(f: (runs: RunSample[]) => T): Partial<Record<RunKind, T>> =>
    Object.fromEntries((['guided', 'unguided', 'naive'] as const).map((k) => [k, f(m.runs.filter((r) => r.kind === k))]));
  const guided = loops(m.runs, 'guided');
  const naive = loops(m.runs, 'naive');
  const engines = m.warm.map((l) => l.engine).filter((e) => e !== null);
  const largest = [...m.cold, ...m.warm].map((l) => l.engine?.largestFileBytes ?? 0);
  return {
    stepIntervalMs: byKind((runs) => summarize(runs.flatMap((r) => r.stepIntervalsMs))),
    generationTime: byKind((runs) => summarize(runs.map((r) => r.generationTime))),
    firstStepMs: summarize(m.runs.filter((r) => r.kind === 'guided').map((r) => r.firstStepMs).filter((v): v is number => v !== null)),
    afterLoopMs: summarize(m.runs.filter((r) => r.kind === 'guided').map((r) => r.afterLoopMs).filter((v): v is number => v !== null)),
    overheadShare: summarize(guided.map((l) => l.overhead_share * 100)),
    uploadBytesPerStep: summarize(guided.map((l) => l.upload_bytes_per_step)),
    readbackBytesPerStep: summarize(guided.map((l) => l.readback_bytes_per_step)),
    // only runs that had such steps: with a preview on every step (slow steps) there is nothing to measure
    readbackOutsidePreviews: summarize(guided.filter((l) => l.steps - l.preview_steps - 1 > 0).map((l) => l.readback_bytes_per_step_outside_previews)),
    previewSteps: summarize(guided.map((l) => l.preview_steps)),
    loopMode: guided[0]?.mode ?? 'unknown',
    loopReason: guided[0]?.reason ?? '',
    naiveOverheadShare: summarize(naive.map((l) => l.overhead_share * 100)),
    naiveReadbackBytesPerStep: summarize(naive.map((l) => l.readback_bytes_per_step)),
    coldLoadSeconds: summarize(m.cold.map((l) => l.readyMs / 1000)),
    warmLoadSeconds: summarize(m.warm.map((l) => l.readyMs / 1000)),
    warmEngineSeconds: summarize(engines.map((e) => e.readSeconds + e.createSeconds)),
    inMemorySeconds: summarize(engines.map((e) => e.createSeconds)),
    largestFileMB: Math.max(0, ...largest) > 0 ? Math.max(...largest) / MB : null,
    heap: { cold: heap(m.cold), warm: heap(m.warm) },
    longestTaskMs: summarize(m.runs.map((r) => r.longestTaskMs)),
  };
}

type HeapKey = keyof BackendSummary['heap']['cold'];

/** "cold 67.5 MB, warm 2.3 MB": the highest peak over the loads of each kind. */
function heapCell(s: BackendSummary, key: HeapKey): string {
  const cold = s.heap.cold[key];
  const warm = s.heap.warm[key];
  if (!cold && !warm) return 'not available';
  const f = (x: Summary | null) => (x ? `${x.max.toFixed(1)} MB` : 'n/a');
  return `cold ${f(cold)}, warm ${f(warm)}`;
}

function ratio(a: Summary | null | undefined, b: Summary | null | undefined): number | null {
  return a && b && b.median > 0 ? a.median / b.median : null;
}

const x = (v: number | null, digits = 2) => (v === null ? 'n/a' : `${v.toFixed(digits)}x`);
const bytes = (s: Summary | null) => (s ? `${Math.round(s.median)} B` : 'n/a');

/** The targets, per column: "met" or "MISSED" with the figure. */
function targets(s: BackendSummary, m: BackendMeasurements): string[] {
  const out: string[] = [];
  const check = (name: string, ok: boolean | null, figure: string) => out.push(`${name}: ${ok === null ? 'n/a' : ok ? 'met' : 'MISSED'} (${figure})`);
  check('overhead <= 3%', s.overheadShare ? s.overheadShare.median <= 3 : null, s.overheadShare ? `${s.overheadShare.median.toFixed(2)}%` : 'n/a');
  if (m.plan.backend === 'webgpu') {
    if (!s.readbackOutsidePreviews) out.push('0 latent B read back/step outside previews: n/a (a preview on every step but the last)');
    else check('0 latent B read back/step outside previews', s.readbackOutsidePreviews.max === 0, bytes(s.readbackOutsidePreviews));
  }
  const g = ratio(s.stepIntervalMs.guided, s.stepIntervalMs.unguided);
  check('guided <= 1.1x unguided step', g === null ? null : g <= 1.1, x(g));
  const w = ratio(s.warmEngineSeconds, s.inMemorySeconds);
  check('warm load <= 1.2x in-memory', w === null ? null : w <= 1.2, x(w));
  const peak = Math.max(s.heap.cold.workerBuffersMB?.max ?? 0, s.heap.warm.workerBuffersMB?.max ?? 0, s.heap.cold.workerMB?.max ?? 0, s.heap.warm.workerMB?.max ?? 0);
  if (s.largestFileMB !== null && s.largestFileMB < MEANINGFUL_FILE_MB) {
    out.push(`load heap <= 1.3x largest file: n/a (a ${s.largestFileMB.toFixed(1)} MB file is below the worker's own buffers)`);
  } else {
    const h = s.largestFileMB ? peak / s.largestFileMB : null;
    check('load heap <= 1.3x largest file', h === null ? null : h <= 1.3, x(h));
  }
  check('no main-thread task > 50 ms', s.longestTaskMs ? s.longestTaskMs.max <= 50 : null, s.longestTaskMs && s.longestTaskMs.max > 0 ? `${s.longestTaskMs.max.toFixed(0)} ms` : 'none over 50 ms');
  return out;
}

export function buildRows(results: BackendMeasurements[], summaries: Map<string, BackendSummary>): Row[] {
  const per = (f: (m: BackendMeasurements, s: BackendSummary) => string): Row['cells'] =>
    Object.fromEntries(results.map((m) => [columnOf(m), f(m, summaries.get(columnOf(m))!)]));
  const step = (kind: RunKind) => per((_, s) => formatSummary(s.stepIntervalMs[kind] ?? null, 'ms', 1));
  const whole = (kind: RunKind) => per((m, s) => (s.generationTime[kind] ? `${formatSummary(s.generationTime[kind] ?? null, 's', 2)}` : 'not run'));
  const rows: Row[] = [
    {
      metric: 'setup',
      cells: per((m) => `${m.plan.size}x${m.plan.size}, ${m.plan.steps} steps, runs ${m.plan.runs}+${m.plan.unguidedRuns}+${m.plan.naiveRuns}`),
      note: 'text2img, EulerDiscreteScheduler (the models\' own), runs: guided (7.5) + unguided (1.0) + naive baseline; untimed warm-up where the plan has one',
    },
    { metric: 'loop', cells: per((_, s) => s.loopMode), note: 'meta.timings.loop.mode of the guided runs: device = GPU-resident loop, host = through JavaScript' },
    { metric: 'step time, guided', cells: step('guided'), note: 'interval between successive "step k of N" progress events in the page: UNet + guidance + scheduler + preview + messaging' },
    { metric: 'step time, unguided (batch 1)', cells: step('unguided'), note: 'the same with guidance_scale 1: one batch-1 UNet call per step' },
    { metric: 'guided / unguided step', cells: per((_, s) => x(ratio(s.stepIntervalMs.guided, s.stepIntervalMs.unguided))), note: 'what the second half of the batch-2 UNet call costs' },
    { metric: 'whole image, guided', cells: whole('guided'), note: 'generationTime: text encoding + loop + VAE decode + PNG' },
    { metric: 'pipeline overhead share', cells: per((_, s) => formatSummary(s.overheadShare, '%', 2)), note: 'meta.timings.loop: 1 - (time awaited in session.run) / (loop time), steps only' },
    { metric: 'upload B/step', cells: per((_, s) => bytes(s.uploadBytesPerStep)), note: 'host -> GPU bytes per step (timestep, step weights, ancestral noise; WASM: no GPU, 0)' },
    { metric: 'read-back B/step', cells: per((_, s) => bytes(s.readbackBytesPerStep)), note: 'GPU -> host bytes per step, preview steps and the final latents included' },
    {
      metric: 'read-back B/step outside previews',
      cells: per((_, s) => (s.readbackOutsidePreviews ? bytes(s.readbackOutsidePreviews) : 'no such steps')),
      note: 'the same over the steps that showed no preview, the last step (the result) excluded; "no such steps" when every other step previewed',
    },
    { metric: 'preview steps per run', cells: per((_, s) => (s.previewSteps ? String(s.previewSteps.median) : 'n/a')), note: 'steps whose latents came back for a live preview (the preview budget is 10% of step time)' },
    { metric: 'naive baseline: step time', cells: step('naive'), note: '?loop=naive: two batch-1 UNet calls for guidance, prediction read back every step, scheduler in JS' },
    { metric: 'naive baseline: whole image', cells: whole('naive'), note: 'generationTime of the naive runs' },
    {
      metric: 'naive / auto ratio (step, whole)',
      cells: per((_, s) => `${x(ratio(s.stepIntervalMs.naive, s.stepIntervalMs.guided))}, ${x(ratio(s.generationTime.naive, s.generationTime.guided))}`),
      note: 'above 1: the auto loop is faster by that factor on this machine',
    },
    { metric: 'first step incl. text encoding', cells: per((_, s) => formatSummary(s.firstStepMs, 'ms', 1)), note: 'from the text2img call until "step 1 of N" in the page' },
    { metric: 'after the loop (VAE decode, PNG)', cells: per((_, s) => formatSummary(s.afterLoopMs, 'ms', 1)), note: 'from the last step\'s progress event until the response arrives' },
    { metric: 'cold load (network)', cells: per((_, s) => formatSummary(s.coldLoadSeconds, 's', 2)), note: 'fresh browser context: navigation start until body[data-ready="true"]' },
    { metric: 'warm load (IndexedDB), page', cells: per((_, s) => formatSummary(s.warmLoadSeconds, 's', 2)), note: 'reload in the same context: weights from IndexedDB, app and ORT from the service worker' },
    { metric: 'warm load, engine', cells: per((_, s) => formatSummary(s.warmEngineSeconds, 's', 3)), note: 'LoadedModelInfo.loadTimings: IndexedDB read + session creation' },
    { metric: 'in-memory reference', cells: per((_, s) => formatSummary(s.inMemorySeconds, 's', 3)), note: 'session creation from the bytes already in memory (the same load without the store)' },
    { metric: 'warm / in-memory', cells: per((_, s) => x(ratio(s.warmEngineSeconds, s.inMemorySeconds))), note: 'the store\'s cost on top of an in-memory load' },
    { metric: 'largest model file', cells: per((_, s) => (s.largestFileMB ? `${s.largestFileMB.toFixed(1)} MB` : 'n/a')), note: 'LoadedModelInfo.loadTimings.largestFileBytes' },
    { metric: 'peak JS heap during load, page', cells: per((_, s) => heapCell(s, 'pageMB')), note: 'main thread: performance.memory.usedJSHeapSize every 10 ms (--enable-precise-memory-info)' },
    { metric: 'peak JS heap during load, worker', cells: per((_, s) => heapCell(s, 'workerMB')), note: 'engine worker: DevTools Runtime.getHeapUsage usedSize every 25 ms' },
    {
      metric: 'peak ArrayBuffers during load, worker',
      cells: per((_, s) => heapCell(s, 'workerBuffersMB')),
      note: "engine worker: Runtime.getHeapUsage backingStorageSize every 25 ms (the weights' bytes, ORT's wasm memory, on a cold load ORT's fetched .wasm); a peak shorter than 25 ms can be missed",
    },
    {
      metric: 'longest main-thread task during a run',
      cells: per((_, s) => (s.longestTaskMs && s.longestTaskMs.max === 0 ? 'none over 50 ms' : formatSummary(s.longestTaskMs, 'ms', 0))),
      note: "PerformanceObserver 'longtask' (reports tasks over 50 ms), max per run",
    },
  ];
  const checks = results.map((m) => targets(summaries.get(columnOf(m))!, m));
  const count = Math.max(...checks.map((c) => c.length));
  for (let i = 0; i < count; i++) {
    rows.push({
      metric: `target ${i + 1}`,
      cells: Object.fromEntries(results.map((m, j) => [columnOf(m), checks[j][i] ?? ''])),
      note: i === 0 ? 'the issue\'s targets; each miss is explained in the README with its cause' : '',
    });
  }
  return rows;
}

/** Aligned text, wrapped notes below, so it pastes into a README or an issue as it is. */
export function formatTable(rows: Row[], columns: string[]): string {
  const header = ['metric', ...columns];
  const body = rows.map((r) => [r.metric, ...columns.map((c) => r.cells[c] ?? '')]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line), ''];
  rows.filter((r) => r.note).forEach((r) => out.push(`- ${r.metric}: ${r.note}`));
  return out.join('\n');
}
