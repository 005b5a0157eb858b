/**
 * What the quantization case measures, per backend: for the fp32 UNet and each quantized copy,
 * session creation and the time of single UNet calls on one fixed input (after untimed warm-up
 * calls at the same shape: shader compilation and prepacking happen there), and the output, so
 * that each copy's output can be compared with the fp32 one from the same backend.
 *
 * The fp32 session stays open and its timed calls alternate with each copy's (SCHEDULE), so that a
 * ratio compares calls made under the same load: on a shared 2-core machine another process can
 * slow a whole series of calls down, and series timed one after the other drift apart.
 * The browser side is quant-browser.ts; onnxruntime-node's side is here.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { UNET_GRAPH } from '../quantize/quantize-model.ts';
import { probeInputs, probeTensors, type ProbeInputs } from '../quantize/unet-probe.ts';
import type { QuantModel } from './quant-models.ts';

export type QuantBackend = 'webgpu' | 'wasm' | 'cpu';

export interface QuantPlan {
  /** Latent height and width (image size / 8). */
  latent: number;
  /** 2: the guided step's UNet call (classifier-free guidance as one batch-2 call). */
  batch: number;
  warmups: number;
  runs: number;
  /** Why this plan is smaller than others, printed with the table. */
  note?: string;
}

export interface QuantModelResult {
  id: string;
  createMs: number;
  runMs: number[];
  /** The fp32 UNet's calls alternated with this model's (empty for the fp32 model itself). */
  referenceMs: number[];
  output: Float32Array;
}

/**
 * Timed call i of a quantized model and the fp32 one: which goes first alternates, so that neither
 * always runs right after the other's (a warm cache, or a freshly released one).
 */
export function quantizedFirst(i: number): boolean {
  return i % 2 === 0;
}

export interface QuantColumn {
  /** e.g. "bench-sd WebGPU (browser)". */
  column: string;
  backend: QuantBackend;
  plan: QuantPlan;
  models: QuantModelResult[];
  /** Where the MatMulNBits nodes ran, when the backend says (verbose node placement). */
  placement?: string;
}

/** The fixed input of every call: seeded latents and text states, t = 500 (tools/quantize/unet-probe.ts). */
export async function quantInputs(reference: QuantModel, plan: QuantPlan): Promise<ProbeInputs> {
  return probeInputs(await readFile(path.join(reference.dir, UNET_GRAPH)), { batch: plan.batch, height: plan.latent, width: plan.latent });
}

/** The fp32 UNet on onnxruntime-node's CPU or WebGPU EP, then each copy beside it (module comment). */
export async function measureQuantNode(models: QuantModel[], backend: 'cpu' | 'webgpu', plan: QuantPlan, log: (line: string) => void): Promise<QuantColumn> {
  const inputs = await quantInputs(models[0], plan);
  const tensors = probeTensors(inputs);
  const feeds = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, new ortNode.Tensor(t.type, t.data, t.dims)]));
  const open = async (m: QuantModel) => {
    const started = performance.now();
    // by path: onnxruntime-node reads the external data beside the graph itself
    const session = await ortNode.InferenceSession.create(path.join(m.dir, UNET_GRAPH), { executionProviders: [backend], graphOptimizationLevel: 'all' });
    return { session, createMs: performance.now() - started };
  };
  const call = async (session: ortNode.InferenceSession) => {
    const t0 = performance.now();
    const r = await session.run(feeds);
    return { ms: performance.now() - t0, output: r.out_sample.data as Float32Array };
  };

  const [reference, ...copies] = models;
  const ref = await open(reference);
  const results: QuantModelResult[] = [];
  try {
    let refOutput: Float32Array | null = null;
    for (let i = 0; i < plan.warmups; i++) refOutput = (await call(ref.session)).output;
    const refResult: QuantModelResult = { id: reference.id, createMs: ref.createMs, runMs: [], referenceMs: [], output: refOutput ?? (await call(ref.session)).output };
    results.push(refResult);
    for (const m of copies) {
      const q = await open(m);
      try {
        let output: Float32Array | null = null;
        for (let i = 0; i < plan.warmups; i++) output = (await call(q.session)).output;
        const runMs: number[] = [];
        const referenceMs: number[] = [];
        for (let i = 0; i < plan.runs; i++) {
          for (const quantized of quantizedFirst(i) ? [true, false] : [false, true]) {
            const r = await call(quantized ? q.session : ref.session);
            (quantized ? runMs : referenceMs).push(r.ms);
            if (quantized) output = r.output;
          }
        }
        if (!output) throw new Error(`${m.id}: no call ran`);
        refResult.runMs.push(...referenceMs);
        results.push({ id: m.id, createMs: q.createMs, runMs, referenceMs, output });
        log(`  ${m.id}: session ${(q.createMs / 1000).toFixed(2)} s, calls ${runMs.map((ms) => ms.toFixed(0)).join(', ')} ms; fp32 beside it ${referenceMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);
      } finally {
        await q.session.release();
      }
    }
  } finally {
    await ref.session.release();
  }
  return { column: `bench-sd ${backend === 'cpu' ? 'CPU' : 'WebGPU'} (Node)`, backend, plan, models: results };
}
