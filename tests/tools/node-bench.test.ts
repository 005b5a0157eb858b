// The Node bench (tools/bench/node-bench.ts) on its smallest plan: tiny-sd on onnxruntime-node's CPU EP,
// one load of each kind, one 2-step run of each kind at 64x64. Its figures are for reading, not
// asserting; this checks that each one is there and within what it can possibly be.
import { beforeAll, describe, expect, it } from 'vitest';
import { measureNodeBench, parseNodeArgs, SMALL_PLAN, type NodeBenchResult } from '../../tools/bench/node-bench.ts';

const STEPS = SMALL_PLAN.steps;

describe('the Node bench, smallest plan (tiny-sd, CPU)', () => {
  let r: NodeBenchResult;
  beforeAll(async () => {
    r = await measureNodeBench({ cases: ['tiny-sd'], backends: ['cpu'], plan: SMALL_PLAN, log: () => undefined });
  }, 60_000);

  it('measures one column with the plan it was given', () => {
    expect(r.skipped).toEqual([]);
    expect(r.results).toHaveLength(1);
    const m = r.results[0];
    expect(m.caseId).toBe('tiny-sd');
    expect(m.engineBackend).toBe('cpu');
    expect(m.plan).toMatchObject({ steps: STEPS, size: 64, coldLoads: 1, warmLoads: 1, runs: 1 });
    expect(r.machine.onnxruntimeNode).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.machine.webgpu).toBe('not asked for');
  });

  it('times the loads: read and create, the largest file, memory peaks at or above the start', () => {
    const loads = r.results[0].loads;
    expect(loads.map((l) => l.kind)).toEqual(['cold', 'warm']);
    for (const l of loads) {
      expect(l.timings.readSeconds).toBeGreaterThan(0);
      expect(l.timings.createSeconds).toBeGreaterThan(0);
      expect(l.seconds).toBeGreaterThanOrEqual(l.timings.readSeconds + l.timings.createSeconds - 1e-3);
      expect(l.peak.heapUsed).toBeGreaterThanOrEqual(l.before.heapUsed);
      expect(l.peak.arrayBuffers).toBeGreaterThanOrEqual(l.before.arrayBuffers);
      expect(l.samples).toBeGreaterThan(1);
    }
    // tiny-sd's largest file is its ~0.6 MB UNet (or text encoder): some hundreds of KB
    expect(loads[0].timings.largestFileBytes).toBeGreaterThan(100_000);
    expect(loads[1].timings.largestFileBytes).toBe(loads[0].timings.largestFileBytes);
    // the cold load's bytes went through the fetch into the store: more to read than from it
    expect(loads[0].peak.arrayBuffers - loads[0].before.arrayBuffers).toBeGreaterThan(loads[0].timings.largestFileBytes);
  });

  it('runs guided, unguided and naive with a step event each step, and the naive run makes twice the UNet calls', () => {
    const runs = r.results[0].runs;
    expect(runs.map((x) => x.kind)).toEqual(['guided', 'unguided', 'naive']);
    const [guided, unguided, naive] = runs;
    for (const x of runs) {
      expect(x.stepIntervalsMs).toHaveLength(STEPS - 1);
      expect(x.stepIntervalsMs.every((ms) => ms >= 0)).toBe(true);
      expect(x.firstStepMs).toBeGreaterThan(0);
      expect(x.afterLoopMs).toBeGreaterThan(0);
      expect(x.seconds * 1000).toBeGreaterThanOrEqual(x.firstStepMs + x.afterLoopMs);
      expect(x.loop.steps).toBe(STEPS);
      expect(x.loop.sessionRunSeconds).toBeGreaterThan(0);
      expect(x.loop.sessionRunSeconds).toBeLessThanOrEqual(x.loop.loopSeconds);
      // 0 where no 10 ms tick came late: a 64x64 run on the CPU can be that quick
      expect(x.longestBlockMs).toBeGreaterThanOrEqual(0);
      // text encoder, UNet per step, VAE decoder: more runs than UNet calls
      expect(x.sessionRuns).toBeGreaterThan(x.unetCalls);
      // the CPU EP has no GPU: the engine counts no transfers
      expect(x.loop.uploadBytes).toBe(0);
      expect(x.loop.readbackBytes).toBe(0);
    }
    expect(guided.loop.mode).toBe('host');
    expect(guided.loop.reason).toMatch(/CPU/);
    expect(naive.loop.mode).toBe('naive');
    expect(guided.unetCalls).toBe(STEPS);
    expect(unguided.unetCalls).toBe(STEPS);
    expect(naive.unetCalls).toBe(2 * guided.unetCalls);
  });

  it('summarises into ratios, shares in [0, 1] and a table with every row', () => {
    const s = r.summaries[0];
    expect(s.column).toBe('tiny-sd/cpu');
    for (const kind of ['guided', 'unguided', 'naive'] as const) {
      const k = s.runs[kind]!;
      expect(k.overheadShare!.median).toBeGreaterThanOrEqual(0);
      expect(k.overheadShare!.median).toBeLessThanOrEqual(1);
      expect(k.stepMs!.n).toBe(STEPS - 1);
    }
    expect(s.runs.naive!.unetCalls!.median).toBe(2 * s.runs.guided!.unetCalls!.median);
    for (const v of Object.values(s.ratios)) expect(v).toBeGreaterThan(0);
    expect(s.loads.warm.readSeconds!.median).toBeGreaterThan(0);
    expect(r.rows.length).toBeGreaterThan(20);
    for (const row of r.rows) expect(row.cells['tiny-sd/cpu']).toBeTruthy();
    expect(r.table).toContain('| tiny-sd/cpu');
    expect(r.table).toMatch(/UNet calls per run\s*\| guided 2, unguided 2, naive 4/);
  });
});

describe('the Node bench options', () => {
  it('selects cases and backends and overrides size and steps', () => {
    expect(parseNodeArgs(['--node'])).toMatchObject({ cases: ['tiny-sd', 'bench-sd'], backends: ['webgpu', 'cpu'], plan: {}, forceSlow: false, quantize: true });
    expect(parseNodeArgs(['--node', '--case=bench-sd', '--only=cpu', '--size=128', '--steps=5'])).toEqual({
      cases: ['bench-sd'], backends: ['cpu'], plan: { size: 128, steps: 5 }, forceSlow: true, quantize: false,
    });
    expect(parseNodeArgs(['--node', '--case=quantize', '--only=webgpu'])).toMatchObject({ cases: [], backends: ['webgpu'], forceSlow: true, quantize: true });
    expect(() => parseNodeArgs(['--only=wasm'])).toThrow(/webgpu or cpu/);
    expect(() => parseNodeArgs(['--size=100'])).toThrow(/multiple of 8/);
    expect(() => parseNodeArgs(['--runs=3'])).toThrow(/unknown option/);
  });
});
