/** The bench's table: one row per figure, one column per backend, each cell with its median and spread. */
import { formatSummary, summarize, type Summary } from './stats.ts';
import type { BackendMeasurements, BenchBackend, LoadSample } from './measure.ts';
import type { HeapPeak } from './worker-heap.ts';

export interface Row {
  metric: string;
  cells: Partial<Record<BenchBackend, string>>;
  /** How it was measured, or why it is not measured yet. */
  note: string;
}

export interface BackendSummary {
  stepIntervalMs: Summary | null;
  secondsPerStep: Summary | null;
  firstStepMs: Summary | null;
  afterLoopMs: Summary | null;
  generationTime: Summary | null;
  coldLoadSeconds: Summary | null;
  warmLoadSeconds: Summary | null;
  /** Per load kind, MB: the page's JS heap, the worker's JS heap, the worker's ArrayBuffers. */
  heap: Record<'cold' | 'warm', { pageMB: Summary | null; workerMB: Summary | null; workerBuffersMB: Summary | null }>;
  longestTaskMs: Summary | null;
}

const MB = 1024 * 1024;

export function summarizeBackend(m: BackendMeasurements): BackendSummary {
  const heap = (loads: LoadSample[]) => {
    const workers = loads.map((l) => l.workerHeap).filter((v): v is HeapPeak => v !== null);
    return {
      pageMB: summarize(loads.map((l) => l.heapPeakBytes).filter((v): v is number => v !== null).map((b) => b / MB)),
      workerMB: summarize(workers.map((p) => p.usedBytes / MB)),
      workerBuffersMB: summarize(workers.map((p) => p.backingBytes / MB)),
    };
  };
  return {
    stepIntervalMs: summarize(m.runs.flatMap((r) => r.stepIntervalsMs)),
    secondsPerStep: summarize(m.runs.map((r) => r.secondsPerStep)),
    firstStepMs: summarize(m.runs.map((r) => r.firstStepMs).filter((v): v is number => v !== null)),
    afterLoopMs: summarize(m.runs.map((r) => r.afterLoopMs).filter((v): v is number => v !== null)),
    generationTime: summarize(m.runs.map((r) => r.generationTime)),
    coldLoadSeconds: summarize(m.cold.map((l) => l.readyMs / 1000)),
    warmLoadSeconds: summarize(m.warm.map((l) => l.readyMs / 1000)),
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

const NOT_YET = 'not measured yet';

export function buildRows(results: BackendMeasurements[], summaries: Map<BenchBackend, BackendSummary>): Row[] {
  const per = (f: (m: BackendMeasurements, s: BackendSummary) => string): Row['cells'] =>
    Object.fromEntries(results.map((m) => [m.plan.backend, f(m, summaries.get(m.plan.backend)!)]));
  const same = (text: string): Row['cells'] => Object.fromEntries(results.map((m) => [m.plan.backend, text]));
  return [
    {
      metric: 'setup (tiny-sd, text2img, guided)',
      cells: per((m) => `${m.plan.size}x${m.plan.size}, ${m.plan.steps} steps, ${m.plan.runs} run(s)`),
      note: 'WASM after an untimed 2-step warm-up run at the same size; WebGPU without one (see the note above the table)',
    },
    {
      metric: 'step time (page-observed)',
      cells: per((_, s) => formatSummary(s.stepIntervalMs, 'ms', 1)),
      note: 'interval between successive "step k of N" progress events in the page: UNet + guidance + scheduler + preview + messaging',
    },
    {
      metric: 'seconds per step (meta.timings)',
      cells: per((_, s) => formatSummary(s.secondsPerStep, 's')),
      note: 'what the API reports: the engine times all of runPipeline, so text encoding and VAE decode are in it too (it overstates the step)',
    },
    {
      metric: 'first step incl. text encoding',
      cells: per((_, s) => formatSummary(s.firstStepMs, 'ms', 1)),
      note: 'from the text2img call until "step 1 of N" in the page',
    },
    {
      metric: 'after the loop (VAE decode, PNG)',
      cells: per((_, s) => formatSummary(s.afterLoopMs, 'ms', 1)),
      note: 'from the last step\'s progress event until the response arrives',
    },
    {
      metric: 'whole image (generationTime)',
      cells: per((m, s) => `${formatSummary(s.generationTime, 's', 2)} for ${m.plan.steps} steps`),
      note: 'text encoding + loop + VAE decode + PNG, as the API response reports it',
    },
    {
      metric: 'cold load (network)',
      cells: per((_, s) => formatSummary(s.coldLoadSeconds, 's', 2)),
      note: 'fresh browser context: navigation start until body[data-ready="true"]',
    },
    {
      metric: 'warm load (IndexedDB)',
      cells: per((_, s) => formatSummary(s.warmLoadSeconds, 's', 2)),
      note: 'reload in the same context: weights from IndexedDB, app and ORT from the service worker',
    },
    {
      metric: 'peak JS heap during load, page',
      cells: per((_, s) => heapCell(s, 'pageMB')),
      note: 'highest over the loads of each kind. Main thread: performance.memory.usedJSHeapSize every 10 ms (--enable-precise-memory-info)',
    },
    {
      metric: 'peak JS heap during load, worker',
      cells: per((_, s) => heapCell(s, 'workerMB')),
      note: 'engine worker: DevTools Runtime.getHeapUsage usedSize every 25 ms (workers have no performance.memory)',
    },
    {
      metric: 'peak ArrayBuffers during load, worker',
      cells: per((_, s) => heapCell(s, 'workerBuffersMB')),
      note: "engine worker: Runtime.getHeapUsage backingStorageSize every 25 ms (ArrayBuffer stores: the weights' bytes, and on a cold load ORT's fetched .wasm); a peak shorter than 25 ms can be missed",
    },
    {
      metric: 'longest main-thread task during a run',
      cells: per((_, s) => (s.longestTaskMs && s.longestTaskMs.max === 0 ? 'none over 50 ms' : formatSummary(s.longestTaskMs, 'ms', 0))),
      note: "PerformanceObserver 'longtask' (reports tasks over 50 ms), max per run",
    },
    { metric: 'pipeline overhead share', cells: same(NOT_YET), note: 'needs timing around session.run inside the engine (issue 6, item 2)' },
    { metric: 'bytes GPU<->CPU per step', cells: same(NOT_YET), note: 'needs a byte count at the engine\'s tensor boundary; today every step reads latents back (item 2)' },
    { metric: 'load from in-memory ArrayBuffer', cells: same(NOT_YET), note: 'needs an engine entry that takes bytes directly, the reference for the lean load path (item 3)' },
    { metric: 'bench-sd case', cells: same(NOT_YET), note: 'the ~100-200 M parameter bench-sd model is not generated yet' },
    { metric: 'naive baseline ratio', cells: same(NOT_YET), note: 'the naive loop (per-step read-back, two UNet calls) exists only once the GPU-resident loop replaces it' },
  ];
}

/** Aligned text, wrapped notes below, so it pastes into a README or an issue as it is. */
export function formatTable(rows: Row[], backends: BenchBackend[]): string {
  const header = ['metric', ...backends.map((b) => b.toUpperCase())];
  const body = rows.map((r) => [r.metric, ...backends.map((b) => r.cells[b] ?? '')]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line), ''];
  rows.forEach((r) => out.push(`- ${r.metric}: ${r.note}`));
  return out.join('\n');
}
