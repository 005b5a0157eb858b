/**
 * The quantization case's table: per setting, the UNet's file size, its call time and its output's
 * cosine similarity to the fp32 UNet's (same backend, same input), each against fp32, with the
 * accuracy targets marked met or MISSED.
 */
import { cosineSimilarity, cosineTarget } from '../quantize/unet-probe.ts';
import { settingLabel, type QuantModel } from './quant-models.ts';
import type { QuantColumn } from './quant-measure.ts';
import type { Row } from './report.ts';
import { formatSummary, summarize } from './stats.ts';

export interface QuantFigures {
  column: string;
  id: string;
  sizeRatio: number;
  /**
   * Median over the timed calls of (this call / the fp32 call made right before or after it): a pair
   * shares the machine's load of the moment, which a ratio of two medians would not (quant-measure.ts).
   */
  callRatio: number;
  medianMs: number;
  cosine: number;
  /** null for fp32. */
  target: number | null;
  met: boolean | null;
}

function median(values: number[]): number {
  return summarize(values)?.median ?? NaN;
}

export function quantFigures(models: QuantModel[], columns: QuantColumn[]): QuantFigures[] {
  const reference = models[0];
  const out: QuantFigures[] = [];
  for (const c of columns) {
    const fp32 = c.models.find((m) => m.id === reference.id);
    if (!fp32) throw new Error(`${c.column}: the fp32 UNet was not measured`);
    for (const m of models) {
      const r = c.models.find((x) => x.id === m.id);
      if (!r) continue;
      const cosine = cosineSimilarity(r.output, fp32.output);
      const target = m.setting ? cosineTarget(m.setting.bits) : null;
      out.push({
        column: c.column,
        id: m.id,
        sizeRatio: m.unetBytes / reference.unetBytes,
        callRatio: r.referenceMs.length > 0 ? median(r.runMs.map((ms, i) => ms / r.referenceMs[i])) : 1,
        medianMs: median(r.runMs),
        cosine,
        target,
        met: target === null ? null : cosine >= target,
      });
    }
  }
  return out;
}

const MB = 1e6;

export function buildQuantRows(models: QuantModel[], columns: QuantColumn[]): Row[] {
  const figures = quantFigures(models, columns);
  const cell = (id: string, f: (x: QuantFigures) => string) =>
    Object.fromEntries(columns.map((c) => {
      const x = figures.find((y) => y.column === c.column && y.id === id);
      return [c.column, x ? f(x) : 'not run'];
    }));
  const reference = models[0];
  const ms = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(0)} ms`);
  const rows: Row[] = [
    {
      metric: 'setup',
      cells: Object.fromEntries(columns.map((c) => [c.column, `${c.plan.latent}x${c.plan.latent} latents, batch ${c.plan.batch}, ${c.plan.warmups} warm-up + ${c.plan.runs} timed call(s) per UNet`])),
      note: 'single UNet calls on one fixed input (seeded latents and text states, t = 500); the fp32 session stays open and each timed call of a quantized UNet is paired with an fp32 call, alternating which goes first; warm-up calls (shader compilation, prepacking) untimed',
    },
    {
      metric: 'fp32 UNet: file, call',
      cells: Object.fromEntries(columns.map((c) => {
        const r = c.models.find((m) => m.id === reference.id);
        return [c.column, r ? `${(reference.unetBytes / MB).toFixed(1)} MB, ${formatSummary(summarize(r.runMs), 'ms', 0)}` : 'not run'];
      })),
      note: 'bench-sd\'s UNet as generated: unet/model.onnx with its weights inline',
    },
  ];
  for (const m of models.slice(1)) {
    const label = settingLabel(m.setting);
    rows.push(
      { metric: `${label}: file size / fp32`, cells: cell(m.id, (x) => `${x.sizeRatio.toFixed(3)}x (${(m.unetBytes / MB).toFixed(1)} MB)`), note: '' },
      { metric: `${label}: call time / fp32`, cells: cell(m.id, (x) => `${x.callRatio.toFixed(2)}x (${ms(x.medianMs)})`), note: '' },
      {
        metric: `${label}: cosine to fp32`,
        cells: cell(m.id, (x) => `${x.cosine.toFixed(5)} (>= ${x.target}: ${x.met ? 'met' : 'MISSED'})`),
        note: '',
      },
    );
  }
  rows[2].note = 'graph + external data against the fp32 graph; MatMul/Gemm weights only (the convolutions, most of a UNet\'s weights, stay fp32)';
  rows[3].note = 'median over the timed calls of (call time / the fp32 UNet\'s call right beside it), same backend and input; in brackets the median call time';
  rows[4].note = 'cosine similarity of out_sample to the fp32 UNet\'s on the same backend and input; targets: >= 0.995 at 8 bits, >= 0.98 at 4 bits';
  if (columns.some((c) => c.placement)) {
    rows.push({
      metric: 'MatMulNBits nodes ran on',
      cells: Object.fromEntries(columns.map((c) => [c.column, c.placement ?? 'not reported'])),
      note: "onnxruntime's verbose node placement, summed over the quantized UNets' sessions",
    });
  }
  return rows;
}

/** The figures without the outputs, for the bench's JSON file. */
export function quantRaw(columns: QuantColumn[]): unknown[] {
  return columns.map((c) => ({ ...c, models: c.models.map(({ output: _output, ...rest }) => ({ ...rest, outputLength: _output.length })) }));
}
