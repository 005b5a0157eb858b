/**
 * One case on one onnxruntime-node backend, through the DOM-free engine: cold loads (files through
 * the fetch, as from the network, into an empty store), warm loads (a new Engine on the same store:
 * from IndexedDB), then timed text2img runs, guided and unguided on the auto loop and guided on the
 * naive loop. The recipe is tests/engine/engine-device-loop.test.ts's.
 */
import 'fake-indexeddb/auto';
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { createStore, type UseStore } from 'idb-keyval';
import * as ortNode from 'onnxruntime-node';
import { Engine, type LoadedModelInfo, type LoopPreference } from '../../src/engine/engine.ts';
import type { EngineProgress, Text2ImgJob } from '../../src/engine/jobs.ts';
import type { LoopStats } from '../../src/engine/loop-stats.ts';
import type { BackendChoice, OrtModule } from '../../src/engine/runtime.ts';
import { ModelStore } from '../../src/models/model-store.ts';
import type { ModelSource } from '../../src/models/model-source.ts';
import { buildHelpers } from '../engine-helpers/graphs.ts';
import type { ManifestFile } from '../generate-tiny-models.ts';
import { countingOrt, type RunCounts } from './node-ort.ts';

export type NodeBackend = 'webgpu' | 'cpu';

/** A model set on disk in public/models/<id>/ layout. */
export interface NodeModel {
  id: string;
  dir: string;
  files: ManifestFile[];
}

export interface NodePlan {
  coldLoads: number;
  /** New Engines on the last cold load's store (at least one: the auto runs use the last). */
  warmLoads: number;
  /** Timed runs of each kind (guided, unguided, naive). */
  runs: number;
  steps: number;
  /** Width and height. */
  size: number;
  guidanceScale: number;
  /**
   * An untimed 2-step run of each kind at 64x64 on every fresh engine first: shader compilation (WebGPU),
   * TAESD's session and ORT's lazy set-up happen there, and 64x64 keeps it cheap on SwiftShader.
   */
  warmup: boolean;
}

export interface MemoryPoint {
  heapUsed: number;
  arrayBuffers: number;
}

export interface LoadSample {
  kind: 'cold' | 'warm';
  /** loadModel's wall time. */
  seconds: number;
  timings: LoadedModelInfo['loadTimings'];
  /** Right before the load (after a GC where --expose-gc allows). */
  before: MemoryPoint;
  /** The highest of each, sampled every ~10 ms during the load. */
  peak: MemoryPoint;
  samples: number;
}

export type RunKind = 'guided' | 'unguided' | 'naive';

export interface RunSample {
  kind: RunKind;
  /** generate()'s wall time: text encoding, the loop, VAE decode, PNG. */
  seconds: number;
  /** From the call until the "step 1" progress event: text encoding (and TAESD's set-up on a first run), the first step. */
  firstStepMs: number;
  /** Between successive denoise progress events (steps 2..N): the step, its preview, the progress hop. */
  stepIntervalsMs: number[];
  /** From the last step's event until generate() returns: VAE decode and PNG. */
  afterLoopMs: number;
  loop: LoopStats;
  /** session.run calls during the run: every session, and the UNet's. */
  sessionRuns: number;
  unetCalls: number;
  previews: { taesd: number; linear: number };
  /**
   * The longest the event loop was held during the run, ms: monitorEventLoopDelay's max, the longest
   * gap between the ticks of a 10 ms timer (so the block plus up to 10 ms); 0 when no tick came late.
   */
  longestBlockMs: number;
}

export interface CaseBackendMeasurements {
  caseId: string;
  backend: NodeBackend;
  plan: NodePlan;
  /** The engine's backend after loading (it falls back where WebGPU cannot run the model) and why. */
  engineBackend: string;
  backendReason: string;
  deviceLoop: true | string;
  previewDecoder: 'taesd' | 'linear';
  loads: LoadSample[];
  runs: RunSample[];
  totalSeconds: number;
}

export interface MeasureContext {
  model: NodeModel;
  /** TAESD's decoder set as the app ships it, for live previews; null: linear previews only. */
  taesd: NodeModel | null;
  backend: NodeBackend;
  backendReason: string;
  plan: NodePlan;
  log: (line: string) => void;
}

const HELPERS = buildHelpers();
const WARMUP_SIZE = 64;
const WARMUP_STEPS = 2;
const PROMPT = 'a cat sitting on a bench';

let storeSerial = 0;

/** The IndexedDB databases of a measurement (fake-indexeddb: in memory), each with every connection opened to it. */
class Databases {
  private readonly open = new Map<string, UseStore[]>();

  fresh(): string {
    const name = `sd-node-bench-${process.pid}-${storeSerial++}`;
    this.open.set(name, []);
    return name;
  }

  connect(name: string): UseStore {
    const store = createStore(name, 'files');
    this.open.get(name)?.push(store);
    return store;
  }

  /**
   * Closes every connection, then deletes the database: a bench-sd store holds ~600 MB. A delete
   * with a connection still open never completes, and fake-indexeddb polls for it forever, keeping
   * the process alive.
   */
  async drop(name: string): Promise<void> {
    for (const store of this.open.get(name) ?? []) (await store('readonly', (s) => s.transaction.db)).close();
    this.open.delete(name);
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error ?? new Error(`could not delete ${name}`));
    });
  }
}

/**
 * Serves the files of the model dirs by URL path, like a static host: "the network" of a cold load.
 * Bodies stream from disk, so that the file is never whole in memory on the way in, as with a download.
 */
function fileFetch(roots: Map<string, string>): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const [, id, ...rest] = decodeURIComponent(url.pathname).split('/');
    const root = roots.get(id);
    const file = root ? join(root, ...rest) : '';
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return new Response(null, { status: 404 });
    }
    const headers = { 'content-length': String(size) };
    if (init?.method === 'HEAD') return new Response(null, { headers });
    // node:stream/web's ReadableStream is the one Response takes at run time; the two types differ only in declarations
    return new Response(Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>, { headers });
  };
}

function source(m: NodeModel): ModelSource {
  return { id: m.id, baseUrl: `http://models.test/${m.id}/`, files: m.files };
}

function memoryNow(): MemoryPoint {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

function collectGarbage(): void {
  // present under --expose-gc (node-bench.ts re-executes with it); without it the baselines are noisier
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
}

/**
 * Runs `work` while sampling memory every ~10 ms and whenever `work` calls the sampler it is given
 * (the load's progress events: a timer cannot fire while ORT creates a session or a chunk is hashed,
 * both synchronous). The peaks include a sample before and after.
 */
async function withMemoryPeak<T>(work: (sample: () => void) => Promise<T>): Promise<{ value: T; before: MemoryPoint; peak: MemoryPoint; samples: number }> {
  collectGarbage();
  const before = memoryNow();
  const peak = { ...before };
  let samples = 1;
  const sample = () => {
    const m = memoryNow();
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
    samples++;
  };
  const timer = setInterval(sample, 10);
  try {
    const value = await work(sample);
    sample();
    return { value, before, peak, samples };
  } finally {
    clearInterval(timer);
  }
}

function job(size: number, steps: number, guidanceScale: number, seed: number): Text2ImgJob {
  return {
    mode: 'text2img', prompt: PROMPT, negativePrompt: '', width: size, height: size, samples: 1, steps, guidanceScale, seed,
    // undefined: the model's own scheduler (EulerDiscreteScheduler for the tiny and bench sets)
    schedulerOverrides: {}, safetyChecker: false,
  };
}

interface Session {
  ctx: MeasureContext;
  ort: OrtModule;
  counts: RunCounts;
  fetch: typeof fetch;
  choice: BackendChoice;
  databases: Databases;
}

function newEngine(s: Session, storeName: string, loop: LoopPreference): Engine {
  const engine = new Engine(
    s.ort,
    new ModelStore({ fetch: s.fetch, store: s.databases.connect(storeName) }),
    s.choice,
    { loop, helperGraph: async (file) => HELPERS.get(file) ?? Promise.reject(new Error(`no helper graph ${file}`)) },
  );
  engine.setPreviewModel(s.ctx.taesd ? source(s.ctx.taesd) : null);
  return engine;
}

async function timedLoad(engine: Engine, s: Session, kind: LoadSample['kind']): Promise<{ sample: LoadSample; info: LoadedModelInfo }> {
  const started = performance.now();
  const { value: info, before, peak, samples } = await withMemoryPeak((sample) => engine.loadModel(source(s.ctx.model), sample));
  const sample: LoadSample = { kind, seconds: (performance.now() - started) / 1000, timings: info.loadTimings, before, peak, samples };
  const mb = (b: number) => `${(b / 1024 ** 2).toFixed(0)} MB`;
  s.ctx.log(
    `  ${kind} load: ${sample.seconds.toFixed(2)} s (read ${info.loadTimings.readSeconds.toFixed(2)} s, create ${info.loadTimings.createSeconds.toFixed(2)} s), ` +
      `peak over the start: heap +${mb(peak.heapUsed - before.heapUsed)}, ArrayBuffers +${mb(peak.arrayBuffers - before.arrayBuffers)}`,
  );
  return { sample, info };
}

async function timedRun(engine: Engine, s: Session, kind: RunKind, seed: number): Promise<RunSample> {
  const { plan } = s.ctx;
  const guidance = kind === 'unguided' ? 1 : plan.guidanceScale;
  const marks: number[] = [];
  const previews = { taesd: 0, linear: 0 };
  const onProgress = (p: EngineProgress) => {
    if (p.phase !== 'denoise') return;
    marks.push(performance.now());
    if (p.preview) previews[p.preview.decoder]++;
  };
  const before = { ...s.counts };
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = performance.now();
  const result = await engine.generate(job(plan.size, plan.steps, guidance, seed), onProgress);
  const ended = performance.now();
  delay.disable();
  if (marks.length !== plan.steps || !result.timings.loop) throw new Error(`${kind} run: ${marks.length} step events of ${plan.steps}, loop stats ${result.timings.loop ? 'present' : 'missing'}`);
  const sample: RunSample = {
    kind,
    seconds: (ended - started) / 1000,
    firstStepMs: marks[0] - started,
    stepIntervalsMs: marks.slice(1).map((t, i) => t - marks[i]),
    afterLoopMs: ended - marks[marks.length - 1],
    loop: result.timings.loop,
    sessionRuns: s.counts.all - before.all,
    unetCalls: s.counts.unet - before.unet,
    previews,
    // with no sample recorded (a run shorter than the resolution) max reads 0
    longestBlockMs: delay.count > 0 ? delay.max / 1e6 : 0,
  };
  const median = [...sample.stepIntervalsMs].sort((a, b) => a - b)[Math.floor(sample.stepIntervalsMs.length / 2)] ?? sample.firstStepMs;
  s.ctx.log(
    `  ${kind} run: ${sample.seconds.toFixed(2)} s, step ~${(median / 1000).toFixed(3)} s, ${sample.unetCalls} UNet calls, ` +
      `loop ${sample.loop.mode}, longest event-loop block ${sample.longestBlockMs.toFixed(0)} ms`,
  );
  return sample;
}

/** Untimed: compiles shaders and creates TAESD's session so that the timed runs measure the steady state. */
async function warmUp(engine: Engine, kinds: RunKind[], s: Session): Promise<void> {
  const started = performance.now();
  for (const kind of kinds) {
    await engine.generate(job(WARMUP_SIZE, WARMUP_STEPS, kind === 'unguided' ? 1 : s.ctx.plan.guidanceScale, 1), () => undefined);
  }
  s.ctx.log(`  warm-up (${kinds.join(', ')}; ${WARMUP_STEPS} steps at ${WARMUP_SIZE}x${WARMUP_SIZE}): ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

export async function measureCaseBackend(ctx: MeasureContext): Promise<CaseBackendMeasurements> {
  const started = performance.now();
  const { plan, backend } = ctx;
  if (plan.coldLoads < 1) throw new Error('the plan needs at least one cold load (it fills the store the warm loads read)');
  const roots = new Map([[ctx.model.id, ctx.model.dir]]);
  if (ctx.taesd) roots.set(ctx.taesd.id, ctx.taesd.dir);
  const counts: RunCounts = { all: 0, unet: 0 };
  const s: Session = {
    ctx,
    ort: countingOrt(ortNode as unknown as OrtModule, counts),
    counts,
    fetch: fileFetch(roots),
    choice: { backend, reason: ctx.backendReason, shaderF16: false },
    databases: new Databases(),
  };
  const loads: LoadSample[] = [];
  const runs: RunSample[] = [];
  const state: { store: string; engine: Engine | null; info: LoadedModelInfo | null } = { store: '', engine: null, info: null };
  // the previous engine is unloaded before each load, so that a load's peak is its own
  const load = async (kind: LoadSample['kind']): Promise<Engine> => {
    await state.engine?.unload();
    state.engine = newEngine(s, state.store, 'auto');
    const r = await timedLoad(state.engine, s, kind);
    loads.push(r.sample);
    state.info = r.info;
    return state.engine;
  };
  try {
    for (let i = 0; i < plan.coldLoads; i++) {
      await state.engine?.unload();
      state.engine = null;
      if (state.store) await s.databases.drop(state.store);
      state.store = s.databases.fresh();
      await load('cold');
    }
    let auto = await load('warm');
    for (let i = 1; i < plan.warmLoads; i++) auto = await load('warm');
    const loop = state.info?.deviceLoop;
    ctx.log(`  loop: ${loop === true ? 'device' : `host (${loop})`}`);
    if (plan.warmup) await warmUp(auto, ['guided', 'unguided'], s);
    // guided and unguided alternate, so that drift over the bench lands on both
    for (let i = 0; i < plan.runs; i++) {
      runs.push(await timedRun(auto, s, 'guided', 42 + i));
      runs.push(await timedRun(auto, s, 'unguided', 42 + i));
    }
    await auto.unload();
    // the baseline: a second Engine on the same store (its load is not one of the timed ones)
    const naive = newEngine(s, state.store, 'naive');
    state.engine = naive;
    await naive.loadModel(source(ctx.model));
    if (plan.warmup) await warmUp(naive, ['naive'], s);
    for (let i = 0; i < plan.runs; i++) runs.push(await timedRun(naive, s, 'naive', 42 + i));
  } finally {
    await state.engine?.unload();
    if (state.store) await s.databases.drop(state.store);
  }
  const loaded = state.info;
  if (!loaded) throw new Error('no load was measured');
  return {
    caseId: ctx.model.id,
    backend,
    plan,
    engineBackend: loaded.backend,
    backendReason: loaded.backendReason,
    deviceLoop: loaded.deviceLoop,
    previewDecoder: ctx.taesd ? 'taesd' : 'linear',
    loads,
    runs,
    totalSeconds: (performance.now() - started) / 1000,
  };
}
