/**
 * The quantization case in Chromium: onnxruntime-web (the WebGPU bundle the app ships, with its
 * WASM backend) loads each UNet of the case straight from a loopback server and times single UNet
 * calls, on WebGPU (SwiftShader here) or on WASM. The app and its engine are not involved: this
 * compares weights, not pipelines.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Browser, ConsoleMessage } from 'playwright-core';
import type * as OrtWeb from 'onnxruntime-web';
import { probeTensors } from '../quantize/unet-probe.ts';
import type { QuantModel } from './quant-models.ts';
import { quantInputs, quantizedFirst, type QuantColumn, type QuantModelResult, type QuantPlan } from './quant-measure.ts';
import { serveStatic } from './static-server.ts';

const require = createRequire(import.meta.url);
/** onnxruntime-web's dist folder (the package exports its .wasm files by name). */
const ORT_DIST = path.dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm'));

interface PageModel {
  id: string;
  graphUrl: string;
  externalData: { path: string; data: string }[];
}

interface PageTensor {
  type: 'float32' | 'float16' | 'int64';
  /** Numbers cross into the page as JSON; int64 values are rebuilt there. */
  values: number[];
  dims: number[];
}

interface PageSetup {
  ortUrl: string;
  wasmPaths: string;
  backend: 'webgpu' | 'wasm';
  feeds: Record<string, PageTensor>;
  reference: PageModel;
  warmups: number;
}

interface PageCopy {
  model: PageModel;
  warmups: number;
  /** quantizedFirst(i) for each timed call, computed in Node (the page gets source text only). */
  order: boolean[];
}

/** What the page keeps between evaluate calls: the module, the inputs and the open fp32 session. */
interface PageState {
  ort: typeof OrtWeb;
  backend: 'webgpu' | 'wasm';
  feeds: Record<string, OrtWeb.Tensor>;
  reference: OrtWeb.InferenceSession;
}

declare global {
  interface Window {
    __quantBench?: PageState;
  }
}

/** Runs in the page (sent as source text: self-contained): loads ORT and opens the fp32 session. */
async function pageOpenReference(setup: PageSetup): Promise<{ createMs: number; output: number[] }> {
  const ort = (await import(setup.ortUrl)) as typeof OrtWeb;
  ort.env.wasm.wasmPaths = setup.wasmPaths;
  // the app's page is not cross-origin isolated either: one WASM thread
  ort.env.wasm.numThreads = 1;
  // without it the runtime's logger drops the verbose node placement that logSeverityLevel asks for
  ort.env.logLevel = 'verbose';
  const feeds: Record<string, OrtWeb.Tensor> = {};
  for (const [name, t] of Object.entries(setup.feeds)) {
    feeds[name] =
      t.type === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(t.values, (v) => BigInt(v)), t.dims)
        : t.type === 'float16'
          ? new ort.Tensor('float16', Uint16Array.from(t.values), t.dims)
          : new ort.Tensor('float32', Float32Array.from(t.values), t.dims);
  }
  const started = performance.now();
  const reference = await ort.InferenceSession.create(setup.reference.graphUrl, {
    executionProviders: [setup.backend],
    graphOptimizationLevel: 'all',
    externalData: setup.reference.externalData,
  });
  const createMs = performance.now() - started;
  window.__quantBench = { ort, backend: setup.backend, feeds, reference };
  let output: number[] = [];
  for (let i = 0; i < Math.max(1, setup.warmups); i++) {
    // warnings only while running: verbose logging per kernel call would slow the calls down
    const r = await reference.run(feeds, { logSeverityLevel: 2 });
    output = Array.from(r.out_sample.data as Float32Array);
    r.out_sample.dispose();
  }
  return { createMs, output };
}

/** Runs in the page: one quantized copy, its calls alternated with the fp32 session's. */
async function pageMeasureCopy(copy: PageCopy): Promise<{ createMs: number; runMs: number[]; referenceMs: number[]; output: number[] }> {
  const state = window.__quantBench;
  if (!state) throw new Error('the fp32 session is not open');
  const started = performance.now();
  const session = await state.ort.InferenceSession.create(copy.model.graphUrl, {
    executionProviders: [state.backend],
    graphOptimizationLevel: 'all',
    externalData: copy.model.externalData,
    // verbose: the node placement (which EP runs MatMulNBits) goes to the console, which the bench reads
    logSeverityLevel: 0,
  });
  const createMs = performance.now() - started;
  const runMs: number[] = [];
  const referenceMs: number[] = [];
  let output: number[] = [];
  try {
    for (let i = 0; i < copy.warmups + copy.order.length; i++) {
      const timed = i >= copy.warmups;
      const order = timed ? (copy.order[i - copy.warmups] ? [true, false] : [false, true]) : [true];
      for (const quantized of order) {
        const t0 = performance.now();
        const r = await (quantized ? session : state.reference).run(state.feeds, { logSeverityLevel: 2 });
        const ms = performance.now() - t0;
        if (quantized) output = Array.from(r.out_sample.data as Float32Array);
        r.out_sample.dispose();
        if (timed) (quantized ? runMs : referenceMs).push(ms);
      }
    }
  } finally {
    await session.release();
  }
  return { createMs, runMs, referenceMs, output };
}

/** Runs in the page: closes the fp32 session. */
async function pageRelease(): Promise<void> {
  await window.__quantBench?.reference.release();
  window.__quantBench = undefined;
}

/**
 * ORT's verbose node placement reduced to where MatMulNBits nodes ran: "Node(s) placed on [EP]"
 * followed by one line per node where a session uses several EPs, "All nodes placed on [EP]" where
 * it uses one.
 */
export class PlacementLog {
  private current = '';
  readonly counts = new Map<string, number>();
  readonly allOn = new Set<string>();

  line(text: string): void {
    const all = /All nodes placed on \[(\w+)\]/.exec(text);
    if (all) {
      this.allOn.add(all[1]);
      return;
    }
    const ep = /Node\(s\) placed on \[(\w+)\]/.exec(text);
    if (ep) {
      this.current = ep[1];
      return;
    }
    if (/(^|\]) *MatMulNBits \(/.test(text)) this.counts.set(this.current, (this.counts.get(this.current) ?? 0) + 1);
  }

  summary(): string | undefined {
    if (this.counts.size > 0) return [...this.counts].map(([ep, n]) => `${n} on ${ep}`).join(', ');
    if (this.allOn.size > 0) return `all nodes on ${[...this.allOn].join(', ')}`;
    return undefined;
  }
}

export async function measureQuantBrowser(
  browser: Browser,
  models: QuantModel[],
  backend: 'webgpu' | 'wasm',
  plan: QuantPlan,
  log: (line: string) => void,
): Promise<QuantColumn> {
  const routes: Record<string, string> = { '/ort/': ORT_DIST };
  for (const m of models) routes[`/models/${m.id}/`] = m.dir;
  const server = await serveStatic(routes);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // tsx compiles with esbuild's keepNames, whose __name helper exists only in Node
    await page.addInitScript({ content: 'globalThis.__name = globalThis.__name || ((f) => f);' });
    const placement = new PlacementLog();
    page.on('console', (msg: ConsoleMessage) => {
      for (const line of msg.text().split('\n')) placement.line(line);
    });
    await page.goto(`${server.url}/`);
    const inputs = probeTensors(await quantInputs(models[0], plan));
    const feeds = Object.fromEntries(
      Object.entries(inputs).map(([k, t]) => [k, { type: t.type, dims: t.dims, values: Array.from(t.data as ArrayLike<number | bigint>, Number) }]),
    );
    const pageModel = (m: QuantModel): PageModel => ({
      id: m.id,
      graphUrl: `${server.url}/models/${m.id}/unet/model.onnx`,
      externalData: m.externalData.map((f) => ({ path: f, data: `${server.url}/models/${m.id}/unet/${f}` })),
    });
    const [reference, ...copies] = models;
    const ref = await page.evaluate(pageOpenReference, {
      ortUrl: `${server.url}/ort/ort.webgpu.min.mjs`,
      wasmPaths: `${server.url}/ort/`,
      backend,
      feeds,
      reference: pageModel(reference),
      warmups: plan.warmups,
    });
    log(`  ${reference.id}: session ${(ref.createMs / 1000).toFixed(2)} s`);
    const refResult: QuantModelResult = { id: reference.id, createMs: ref.createMs, runMs: [], referenceMs: [], output: Float32Array.from(ref.output) };
    const results: QuantModelResult[] = [refResult];
    // one page.evaluate per copy: a UNet call on SwiftShader takes seconds, and progress shows
    for (const m of copies) {
      const order = Array.from({ length: plan.runs }, (_, i) => quantizedFirst(i));
      const r = await page.evaluate(pageMeasureCopy, { model: pageModel(m), warmups: plan.warmups, order });
      refResult.runMs.push(...r.referenceMs);
      results.push({ id: m.id, createMs: r.createMs, runMs: r.runMs, referenceMs: r.referenceMs, output: Float32Array.from(r.output) });
      log(`  ${m.id}: session ${(r.createMs / 1000).toFixed(2)} s, calls ${r.runMs.map((ms) => ms.toFixed(0)).join(', ')} ms; fp32 beside it ${r.referenceMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    }
    await page.evaluate(pageRelease);
    return { column: `bench-sd ${backend === 'webgpu' ? 'WebGPU' : 'WASM'} (browser)`, backend, plan, models: results, placement: placement.summary() };
  } finally {
    await context.close();
    await server.close();
  }
}
