// The bench's quantization case (tools/bench/quant-*.ts) on tiny-sd instead of bench-sd: the Node
// measurement with fp32 and quantized sessions side by side, the table with its targets, and the
// reading of onnxruntime's node placement. Figures are for reading; this checks they are all there.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlacementLog } from '../../tools/bench/quant-browser.ts';
import { measureQuantNode, type QuantColumn } from '../../tools/bench/quant-measure.ts';
import { describeQuantModel, QUANT_SETTINGS, settingLabel, type QuantModel } from '../../tools/bench/quant-models.ts';
import { buildQuantRows, quantFigures } from '../../tools/bench/quant-report.ts';
import { quantizeModelDir } from '../../tools/quantize/quantize-model.ts';
import { DEFAULT_SCHEME } from '../../tools/quantize/scheme.ts';
import { TinyModelFactory } from '../../tools/tiny-models/sets.ts';

describe('the quantization case on tiny-sd (onnxruntime-node CPU)', () => {
  let root = '';
  let models: QuantModel[] = [];
  let column: QuantColumn;
  const plan = { latent: 8, batch: 2, warmups: 1, runs: 3 };

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'quant-bench-test-'));
    const src = path.join(root, 'tiny-sd');
    for (const f of new TinyModelFactory().setFiles('tiny-sd')) {
      mkdirSync(path.dirname(path.join(src, f.path)), { recursive: true });
      writeFileSync(path.join(src, f.path), f.bytes);
    }
    models = [await describeQuantModel('tiny-sd', null, src)];
    for (const setting of QUANT_SETTINGS) {
      const dir = path.join(root, settingLabel(setting).replace(' ', '-'));
      await quantizeModelDir(src, dir, { ...setting, scheme: DEFAULT_SCHEME });
      models.push(await describeQuantModel(`tiny-sd ${settingLabel(setting)}`, setting, dir));
    }
    column = await measureQuantNode(models, 'cpu', plan, () => undefined);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('pairs every timed call of a quantized UNet with an fp32 call', () => {
    expect(column.models.map((m) => m.id)).toEqual(models.map((m) => m.id));
    const [fp32, ...copies] = column.models;
    for (const m of copies) {
      expect(m.runMs).toHaveLength(plan.runs);
      expect(m.referenceMs).toHaveLength(plan.runs);
      expect([...m.runMs, ...m.referenceMs].every((ms) => ms > 0)).toBe(true);
      expect(m.output.length).toBe(2 * 4 * 8 * 8);
    }
    expect(fp32.runMs).toHaveLength(plan.runs * copies.length);
    expect(models[0].externalData).toEqual([]);
    expect(models[1].externalData).toEqual(['model.onnx_data']);
  });

  it('reports size, call-time ratio and cosine per setting, with the targets marked', () => {
    const figures = quantFigures(models, [column]);
    expect(figures.map((f) => f.id)).toEqual(models.map((m) => m.id));
    for (const f of figures.slice(1)) {
      expect(f.sizeRatio).toBeGreaterThan(0.5);
      expect(f.sizeRatio).toBeLessThan(1);
      expect(f.callRatio).toBeGreaterThan(0);
      expect(f.met).toBe(true);
    }
    const rows = buildQuantRows(models, [column]);
    const cell = (metric: string) => rows.find((r) => r.metric === metric)?.cells[column.column];
    expect(cell('int8 b32: cosine to fp32')).toMatch(/^0\.99\d+ \(>= 0\.995: met\)$/);
    expect(cell('int4 b128: cosine to fp32')).toMatch(/\(>= 0\.98: met\)$/);
    expect(cell('int4 b32: file size / fp32')).toMatch(/^0\.\d{3}x \(/);
    expect(cell('int8 b128: call time / fp32')).toMatch(/^\d+\.\d\dx \(/);
  });

  it('marks a cosine under its target as MISSED', () => {
    const [fp32, q] = column.models;
    const noisy = { ...q, output: q.output.map((v, i) => v + (i % 2 ? 1 : -1)) };
    const rows = buildQuantRows(models.slice(0, 2), [{ ...column, models: [fp32, noisy] }]);
    expect(rows.find((r) => r.metric === 'int8 b32: cosine to fp32')?.cells[column.column]).toMatch(/: MISSED\)$/);
  });
});

describe("onnxruntime's node placement, as the browser bench reads it", () => {
  it('counts MatMulNBits nodes per execution provider, or names the one EP that runs everything', () => {
    const several = new PlacementLog();
    for (const line of [
      '[V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 3',
      '   MatMulNBits (time_embedding/linear_1/Gemm)',
      '   Conv (conv_in)',
      '   MatMulNBits (attn1/to_q/MatMul)',
      '[V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1',
      '   Gather (Gather)',
    ]) {
      several.line(line);
    }
    expect(several.summary()).toBe('2 on WebGpuExecutionProvider');
    const one = new PlacementLog();
    one.line('[V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on [CPUExecutionProvider]. Number of nodes: 178');
    expect(one.summary()).toBe('all nodes on CPUExecutionProvider');
    expect(new PlacementLog().summary()).toBeUndefined();
  });
});
