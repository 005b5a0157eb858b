/**
 * The Node bench's figures: one column per case x backend ("tiny-sd/webgpu"), one row per figure.
 * Medians and spreads from stats.ts; ratios are ratios of medians.
 */
import { formatSummary, summarize, type Summary } from './stats.ts';
import type { Row } from './report.ts';
import type { CaseBackendMeasurements, LoadSample, RunKind, RunSample } from './node-measure.ts';

const MB = 1024 * 1024;
const KINDS: RunKind[] = ['guided', 'unguided', 'naive'];

export interface LoadSummary {
  seconds: Summary | null;
  readSeconds: Summary | null;
  createSeconds: Summary | null;
  /** Peak during the load minus the value right before it, MB. */
  heapRiseMB: Summary | null;
  arrayBuffersRiseMB: Summary | null;
  /** The absolute peaks, MB. */
  heapPeakMB: Summary | null;
  arrayBuffersPeakMB: Summary | null;
}

export interface KindSummary {
  runs: number;
  /** Between successive denoise progress events (steps 2..N), over every run of the kind. */
  stepMs: Summary | null;
  imageSeconds: Summary | null;
  firstStepMs: Summary | null;
  afterLoopMs: Summary | null;
  /** 1 - sessionRunSeconds / loopSeconds, per run. */
  overheadShare: Summary | null;
  unetCalls: Summary | null;
  sessionRuns: Summary | null;
  /** Per step, bytes (medians over the runs); counted on WebGPU sessions only. */
  uploadBytesPerStep: number | null;
  readbackBytesPerStep: number | null;
  /** Null where every step but the last showed a preview. */
  readbackBytesPerStepOutsidePreviews: number | null;
  previewSteps: Summary | null;
  previews: { taesd: number; linear: number };
  longestBlockMs: Summary | null;
  mode: string;
  reason: string;
}

export interface ColumnSummary {
  column: string;
  largestFileBytes: number;
  loads: Record<LoadSample['kind'], LoadSummary>;
  runs: Record<RunKind, KindSummary | null>;
  /** Ratios of medians; null where a side has no samples. */
  ratios: { guidedOverUnguidedStep: number | null; naiveOverAutoStep: number | null; naiveOverAutoImage: number | null };
}

export function columnName(m: Pick<CaseBackendMeasurements, 'caseId' | 'backend'>): string {
  return `${m.caseId}/${m.backend}`;
}

function median(values: number[]): number | null {
  return summarize(values)?.median ?? null;
}

function summarizeLoads(loads: LoadSample[]): LoadSummary {
  return {
    seconds: summarize(loads.map((l) => l.seconds)),
    readSeconds: summarize(loads.map((l) => l.timings.readSeconds)),
    createSeconds: summarize(loads.map((l) => l.timings.createSeconds)),
    heapRiseMB: summarize(loads.map((l) => (l.peak.heapUsed - l.before.heapUsed) / MB)),
    arrayBuffersRiseMB: summarize(loads.map((l) => (l.peak.arrayBuffers - l.before.arrayBuffers) / MB)),
    heapPeakMB: summarize(loads.map((l) => l.peak.heapUsed / MB)),
    arrayBuffersPeakMB: summarize(loads.map((l) => l.peak.arrayBuffers / MB)),
  };
}

function summarizeKind(runs: RunSample[]): KindSummary | null {
  if (runs.length === 0) return null;
  const perStep = (f: (r: RunSample) => number) => median(runs.map((r) => f(r) / r.loop.steps));
  const outside = runs.filter((r) => r.loop.stepsOutsidePreviews > 0);
  const previews = { taesd: 0, linear: 0 };
  for (const r of runs) {
    previews.taesd += r.previews.taesd;
    previews.linear += r.previews.linear;
  }
  return {
    runs: runs.length,
    stepMs: summarize(runs.flatMap((r) => r.stepIntervalsMs)),
    imageSeconds: summarize(runs.map((r) => r.seconds)),
    firstStepMs: summarize(runs.map((r) => r.firstStepMs)),
    afterLoopMs: summarize(runs.map((r) => r.afterLoopMs)),
    overheadShare: summarize(runs.map((r) => (r.loop.loopSeconds > 0 ? 1 - r.loop.sessionRunSeconds / r.loop.loopSeconds : 0))),
    unetCalls: summarize(runs.map((r) => r.unetCalls)),
    sessionRuns: summarize(runs.map((r) => r.sessionRuns)),
    uploadBytesPerStep: perStep((r) => r.loop.uploadBytes),
    readbackBytesPerStep: perStep((r) => r.loop.readbackBytes),
    readbackBytesPerStepOutsidePreviews: median(outside.map((r) => r.loop.readbackBytesOutsidePreviews / r.loop.stepsOutsidePreviews)),
    previewSteps: summarize(runs.map((r) => r.loop.previewSteps)),
    previews,
    longestBlockMs: summarize(runs.map((r) => r.longestBlockMs)),
    mode: runs[0].loop.mode,
    reason: runs[0].loop.reason,
  };
}

function ratio(a: Summary | null | undefined, b: Summary | null | undefined): number | null {
  return a && b && b.median > 0 ? a.median / b.median : null;
}

export function summarizeColumn(m: CaseBackendMeasurements): ColumnSummary {
  const runs = Object.fromEntries(KINDS.map((k) => [k, summarizeKind(m.runs.filter((r) => r.kind === k))])) as Record<RunKind, KindSummary | null>;
  return {
    column: columnName(m),
    largestFileBytes: Math.max(0, ...m.loads.map((l) => l.timings.largestFileBytes)),
    loads: { cold: summarizeLoads(m.loads.filter((l) => l.kind === 'cold')), warm: summarizeLoads(m.loads.filter((l) => l.kind === 'warm')) },
    runs,
    ratios: {
      guidedOverUnguidedStep: ratio(runs.guided?.stepMs, runs.unguided?.stepMs),
      naiveOverAutoStep: ratio(runs.naive?.stepMs, runs.guided?.stepMs),
      naiveOverAutoImage: ratio(runs.naive?.imageSeconds, runs.guided?.imageSeconds),
    },
  };
}

/** The browser bench's row shape: metric, a cell per column, a note. */
export type NodeRow = Row;

function bytes(n: number | null): string {
  if (n === null) return 'n/a';
  if (n >= MB) return `${(n / MB).toFixed(2)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n.toFixed(0)} B`;
}

const times = (r: number | null) => (r === null ? 'n/a' : `${r.toFixed(2)}x`);
const pct = (s: Summary | null) => (s ? `${(s.median * 100).toFixed(1)}%` : 'n/a');
const seconds = (s: Summary | null) => (s ? { ...s, median: s.median / 1000, min: s.min / 1000, max: s.max / 1000, p10: s.p10 / 1000, p90: s.p90 / 1000 } : null);

/** "guided A, unguided B, naive C" from one figure of each kind. */
function perKind(c: ColumnSummary, f: (k: KindSummary) => string): string {
  return KINDS.map((k) => `${k} ${c.runs[k] ? f(c.runs[k]) : 'not run'}`).join(', ');
}

export function buildNodeRows(results: CaseBackendMeasurements[], summaries: ColumnSummary[]): NodeRow[] {
  const cells = (f: (c: ColumnSummary, m: CaseBackendMeasurements) => string) =>
    Object.fromEntries(summaries.map((c, i) => [c.column, f(c, results[i])]));
  const onGpu = (m: CaseBackendMeasurements) => m.engineBackend === 'webgpu';
  const kindRow = (k: RunKind, f: (s: KindSummary) => string) => cells((c) => (c.runs[k] ? f(c.runs[k]) : 'not run'));
  const loadCell = (l: LoadSummary) => `${formatSummary(l.seconds, 's', 2)} (read ${l.readSeconds ? l.readSeconds.median.toFixed(2) : 'n/a'} s, create ${l.createSeconds ? l.createSeconds.median.toFixed(2) : 'n/a'} s)`;
  const riseCell = (c: ColumnSummary, key: 'heapRiseMB' | 'arrayBuffersRiseMB', withRatio: boolean) =>
    (['cold', 'warm'] as const)
      .map((kind) => {
        const s = c.loads[kind][key];
        if (!s) return `${kind} n/a`;
        const share = withRatio && c.largestFileBytes > 0 ? ` (${((s.max * MB) / c.largestFileBytes).toFixed(2)}x largest file)` : '';
        return `${kind} +${s.max.toFixed(0)} MB${share}`;
      })
      .join(', ');
  return [
    {
      metric: 'setup',
      cells: cells((_, m) => `${m.plan.size}x${m.plan.size}, ${m.plan.steps} steps; ${m.plan.coldLoads} cold + ${m.plan.warmLoads} warm loads; ${m.plan.runs} run(s) per kind${m.plan.warmup ? ' after a warm-up' : ', no warm-up'}`),
      note: "text2img with the model's own EulerDiscreteScheduler, guidance 7.5 (guided, naive) or 1 (unguided: batch 1), an onProgress callback (live previews) as the app passes",
    },
    {
      metric: 'loop (auto engine)',
      cells: cells((c) => c.runs.guided?.mode ?? 'not run'),
      note: 'which denoising loop the auto engine ran; the reasons are listed below the table',
    },
    { metric: 'step time, guided (auto)', cells: kindRow('guided', (k) => formatSummary(seconds(k.stepMs), 's', 3)), note: 'interval between successive denoise progress events (steps 2..N): UNet, guidance, scheduler step, preview' },
    { metric: 'step time, unguided (auto)', cells: kindRow('unguided', (k) => formatSummary(seconds(k.stepMs), 's', 3)), note: 'the same, guidance_scale 1: one batch-1 UNet call per step' },
    { metric: 'step time, naive (guided)', cells: kindRow('naive', (k) => formatSummary(seconds(k.stepMs), 's', 3)), note: "a second Engine with loop 'naive': two batch-1 UNet calls and the latents through the host every step" },
    { metric: 'guided / unguided step', cells: cells((c) => times(c.ratios.guidedOverUnguidedStep)), note: 'ratio of median step times on the auto engine' },
    { metric: 'naive / auto step (guided)', cells: cells((c) => times(c.ratios.naiveOverAutoStep)), note: 'ratio of median step times: above 1, the auto loop is faster' },
    { metric: 'whole image, guided (auto)', cells: kindRow('guided', (k) => formatSummary(k.imageSeconds, 's', 2)), note: "generate()'s wall time: text encoding, the loop, VAE decode, PNG" },
    { metric: 'whole image, unguided (auto)', cells: kindRow('unguided', (k) => formatSummary(k.imageSeconds, 's', 2)), note: 'the same' },
    { metric: 'whole image, naive (guided)', cells: kindRow('naive', (k) => formatSummary(k.imageSeconds, 's', 2)), note: 'the same' },
    { metric: 'naive / auto whole image', cells: cells((c) => times(c.ratios.naiveOverAutoImage)), note: 'ratio of median whole-image times, guided' },
    {
      metric: 'first step incl. text encoding, guided',
      cells: kindRow('guided', (k) => formatSummary(k.firstStepMs, 'ms', 0)),
      note: 'from the generate() call until the step-1 event; on WebGPU it can still hold shader compilation for shapes the 64x64 warm-up did not meet (without a warm-up: all of it, and TAESD\'s session creation)',
    },
    { metric: 'after the loop (VAE decode, PNG), guided', cells: kindRow('guided', (k) => formatSummary(k.afterLoopMs, 'ms', 0)), note: "from the last step's event until generate() returns" },
    {
      metric: 'pipeline overhead share',
      cells: cells((c) => perKind(c, (k) => pct(k.overheadShare))),
      note: "1 - sessionRunSeconds / loopSeconds (timings.loop), median over runs: the loop's time outside session.run",
    },
    { metric: 'UNet calls per run', cells: cells((c) => perKind(c, (k) => (k.unetCalls ? k.unetCalls.median.toFixed(0) : 'n/a'))), note: 'session.run calls of the UNet session, counted in a wrapper around onnxruntime-node' },
    {
      metric: 'upload per step',
      cells: cells((c, m) => (onGpu(m) ? perKind(c, (k) => bytes(k.uploadBytesPerStep)) : 'n/a (CPU: no GPU)')),
      note: "timings.loop.uploadBytes / steps: host tensors fed to WebGPU sessions (the engine counts transfers on WebGPU only)",
    },
    {
      metric: 'read-back per step',
      cells: cells((c, m) => (onGpu(m) ? perKind(c, (k) => bytes(k.readbackBytesPerStep)) : 'n/a (CPU: no GPU)')),
      note: 'timings.loop.readbackBytes / steps: every step, previews and the result included',
    },
    {
      metric: 'read-back per step outside previews',
      cells: cells((c, m) => (onGpu(m) ? perKind(c, (k) => (k.readbackBytesPerStepOutsidePreviews === null ? 'no such steps' : bytes(k.readbackBytesPerStepOutsidePreviews))) : 'n/a (CPU: no GPU)')),
      note: 'readbackBytesOutsidePreviews / stepsOutsidePreviews: steps that showed no preview, the last excluded',
    },
    {
      metric: 'preview steps per run',
      cells: cells((c) => perKind(c, (k) => `${k.previewSteps ? k.previewSteps.median.toFixed(0) : 'n/a'}${k.previews.taesd > 0 ? ` (${k.previews.taesd} TAESD over ${k.runs} run(s))` : ''}`)),
      note: "the engine's preview schedule (a share of the step time): TAESD where it fits the budget, else the linear approximation",
    },
    {
      metric: 'longest event-loop block during a run',
      cells: cells((c) => perKind(c, (k) => (!k.longestBlockMs ? 'n/a' : k.longestBlockMs.max === 0 ? 'under 10 ms' : `${k.longestBlockMs.max.toFixed(0)} ms`))),
      note: "perf_hooks.monitorEventLoopDelay max, highest over the runs: the longest gap between a 10 ms timer's ticks (the block plus up to 10 ms). " +
        "The analogue of the page's longest task: onnxruntime-node runs each session.run synchronously on the main thread",
    },
    { metric: 'cold load (fetch into an empty store)', cells: cells((c) => loadCell(c.loads.cold)), note: "loadModel wall time; read = loadTimings.readSeconds (fetch, IndexedDB write, verification), create = createSeconds" },
    { metric: 'warm load (IndexedDB)', cells: cells((c) => loadCell(c.loads.warm)), note: 'a new Engine on the same store; create = createSeconds: the load from in-memory bytes, the reference' },
    {
      metric: 'warm read / in-memory create',
      cells: cells((c) => times(ratio(c.loads.warm.readSeconds, c.loads.warm.createSeconds))),
      note: "what reading the store adds, relative to creating the sessions from bytes already in memory",
    },
    { metric: 'largest model file', cells: cells((c) => bytes(c.largestFileBytes)), note: 'loadTimings.largestFileBytes' },
    {
      metric: 'peak heapUsed rise during load',
      cells: cells((c) => riseCell(c, 'heapRiseMB', false)),
      note: 'process.memoryUsage().heapUsed every ~10 ms and at each load progress event, minus the value before the load (after a GC), highest over the loads',
    },
    {
      metric: 'peak ArrayBuffers rise during load',
      cells: cells((c) => riseCell(c, 'arrayBuffersRiseMB', true)),
      note: "process.memoryUsage().arrayBuffers the same way, next to the largest file's size; fake-indexeddb keeps the store in this process's ArrayBuffers, so a cold load's rise includes the stored copy",
    },
  ];
}

