/**
 * Rewrites a decoded ONNX model in place: every MatMul whose B is a constant 2-D float initializer
 * and every Gemm with a constant B becomes a com.microsoft MatMulNBits node with block-quantized
 * weights. Convolutions and everything else stay as they are.
 *
 * Gemm's alpha is folded into the weights before quantization; beta·C becomes MatMulNBits' bias
 * input where C is a constant of N elements (onnxruntime 1.30's CPU and WebGPU kernels both take
 * input 5, checked in tests/tools/quantize.test.ts), else an Add after the node.
 */
import { fromHalfBits, toHalfBits } from '../../src/engine/float16.ts';
import { onnx, type OnnxTypes } from '../onnx/proto.ts';
import { quantizeMatrix, type QuantizedMatrix, type QuantParams, type WeightLayout } from './block-quant.ts';
import { DataType, dimsOf, elementBytes, elementCount, int64, type TensorSource } from './tensor-data.ts';

export const MS_DOMAIN = 'com.microsoft';
const AttrType = onnx.AttributeProto.AttributeType;

export interface RewrittenNode {
  node: string;
  op: 'MatMul' | 'Gemm';
  weight: string;
  K: number;
  N: number;
}

export interface SkippedNode {
  node: string;
  op: string;
  reason: string;
}

export interface RewriteReport {
  rewritten: RewrittenNode[];
  /** MatMul / Gemm nodes left as they were, and why. */
  skipped: SkippedNode[];
  /** Bytes of the float weights that were replaced, and of the tensors that replaced them. */
  weightBytesBefore: number;
  weightBytesAfter: number;
}

function attr(node: OnnxTypes.INodeProto, name: string): OnnxTypes.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function intAttr(node: OnnxTypes.INodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? int64(a.i) : fallback;
}

function floatAttr(node: OnnxTypes.INodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? fallback) : fallback;
}

function intAttribute(name: string, value: number): OnnxTypes.IAttributeProto {
  return { name, type: AttrType.INT, i: value };
}

/** Every value name a node reads, including those read from inside subgraphs (outer-scope references). */
function collectReads(graph: OnnxTypes.IGraphProto, into: Set<string>): void {
  for (const node of graph.node ?? []) {
    for (const name of node.input ?? []) into.add(name);
    for (const a of node.attribute ?? []) {
      if (a.g) collectReads(a.g, into);
      for (const g of a.graphs ?? []) collectReads(g, into);
    }
  }
  for (const o of graph.output ?? []) if (o.name) into.add(o.name);
}

/** Floats as a tensor of the given float type's bytes. */
function floatBytes(values: Float32Array, dataType: number): Uint8Array {
  if (dataType === DataType.FLOAT16) {
    const half = Uint16Array.from(values, toHalfBits);
    return new Uint8Array(half.buffer);
  }
  return new Uint8Array(Float32Array.from(values).buffer);
}

const roundToHalf = (v: number) => fromHalfBits(toHalfBits(v));

class NameAllocator {
  private readonly used = new Set<string>();

  constructor(graph: OnnxTypes.IGraphProto) {
    for (const t of graph.initializer ?? []) if (t.name) this.used.add(t.name);
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) if (v.name) this.used.add(v.name);
    for (const n of graph.node ?? []) {
      for (const o of n.output ?? []) this.used.add(o);
      if (n.name) this.used.add(n.name);
    }
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

interface QuantizedWeight {
  B: string;
  scales: string;
  zeroPoints: string;
  q: QuantizedMatrix;
}

export async function rewriteToMatMulNBits(model: OnnxTypes.IModelProto, source: TensorSource, params: QuantParams): Promise<RewriteReport> {
  const graph = model.graph;
  if (!graph) throw new Error('the model has no graph');
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  // an initializer that is also a graph input can be overridden at run time: not a constant
  for (const i of graph.input ?? []) if (i.name) initializers.delete(i.name);
  const names = new NameAllocator(graph);
  const report: RewriteReport = { rewritten: [], skipped: [], weightBytesBefore: 0, weightBytesAfter: 0 };
  const added: OnnxTypes.ITensorProto[] = [];
  /** Initializers the rewritten nodes read: dropped below when nothing reads them any more. */
  const released = new Set<string>();
  const quantized = new Map<string, QuantizedWeight>();

  const addTensor = (base: string, dims: number[], dataType: number, rawData: Uint8Array): string => {
    const name = names.fresh(base);
    added.push({ name, dims, dataType, rawData });
    return name;
  };

  const quantizeWeight = async (weight: OnnxTypes.ITensorProto, layout: WeightLayout, alpha: number): Promise<QuantizedWeight> => {
    const key = `${weight.name}|${layout}|${alpha}`;
    const cached = quantized.get(key);
    if (cached) return cached;
    const [d0, d1] = dimsOf(weight);
    const [K, N] = layout === 'KN' ? [d0, d1] : [d1, d0];
    let values = await source.floats(weight);
    if (alpha !== 1) values = values.map((v) => v * alpha);
    const dt = weight.dataType ?? DataType.FLOAT;
    const q = quantizeMatrix(values, K, N, layout, { ...params, roundScale: dt === DataType.FLOAT16 ? roundToHalf : Math.fround });
    const base = `${weight.name}_q${params.bits}b${params.blockSize}`;
    const entry: QuantizedWeight = {
      q,
      B: addTensor(base, [N, q.kBlocks, q.blobSize], DataType.UINT8, q.data),
      scales: addTensor(`${base}_scales`, [N, q.kBlocks], dt, floatBytes(q.scales, dt)),
      zeroPoints: addTensor(`${base}_zero_points`, [N, q.zeroPointBytesPerRow], DataType.UINT8, q.zeroPoints),
    };
    report.weightBytesBefore += elementCount(weight) * elementBytes(dt);
    report.weightBytesAfter += q.data.byteLength + q.scales.length * elementBytes(dt) + q.zeroPoints.byteLength;
    quantized.set(key, entry);
    return entry;
  };

  /** Why B of this node cannot be quantized, or null when it can. */
  const weightProblem = (b: string | undefined): string | null => {
    const w = b ? initializers.get(b) : undefined;
    if (!w) return 'B is not a constant initializer';
    if (dimsOf(w).length !== 2) return `B has ${dimsOf(w).length} dimensions, not 2`;
    if (w.dataType !== DataType.FLOAT && w.dataType !== DataType.FLOAT16) return `B's data type ${w.dataType} is not float32 or float16`;
    return null;
  };

  const nbitsNode = (name: string, inputs: string[], output: string, q: QuantizedMatrix): OnnxTypes.INodeProto => ({
    name,
    opType: 'MatMulNBits',
    domain: MS_DOMAIN,
    input: inputs,
    output: [output],
    attribute: [intAttribute('K', q.K), intAttribute('N', q.N), intAttribute('bits', q.bits), intAttribute('block_size', q.blockSize)],
  });

  const nodes: OnnxTypes.INodeProto[] = [];
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    const isDefaultDomain = !node.domain || node.domain === 'ai.onnx';
    if (!isDefaultDomain || (op !== 'MatMul' && op !== 'Gemm')) {
      nodes.push(node);
      continue;
    }
    const [a, b, c] = node.input ?? [];
    const nodeName = node.name || (node.output ?? [])[0] || op;
    const problem = weightProblem(b) ?? (op === 'Gemm' && intAttr(node, 'transA', 0) !== 0 ? 'Gemm with transA' : null);
    if (problem) {
      report.skipped.push({ node: nodeName, op, reason: problem });
      nodes.push(node);
      continue;
    }
    const weight = initializers.get(b)!;
    const output = (node.output ?? [])[0];
    for (const name of node.input ?? []) if (initializers.has(name)) released.add(name);
    if (op === 'MatMul') {
      const w = await quantizeWeight(weight, 'KN', 1);
      nodes.push(nbitsNode(nodeName, [a, w.B, w.scales, w.zeroPoints], output, w.q));
      report.rewritten.push({ node: nodeName, op, weight: b, K: w.q.K, N: w.q.N });
      continue;
    }

    // Gemm: Y = alpha · A · B' + beta · C
    const alpha = floatAttr(node, 'alpha', 1);
    const beta = floatAttr(node, 'beta', 1);
    const w = await quantizeWeight(weight, intAttr(node, 'transB', 0) ? 'NK' : 'KN', alpha);
    const inputs = [a, w.B, w.scales, w.zeroPoints];
    const dt = weight.dataType ?? DataType.FLOAT;
    const cTensor = c ? initializers.get(c) : undefined;
    const cDims = cTensor ? dimsOf(cTensor) : [];
    const betaC = async (t: OnnxTypes.ITensorProto, dims: number[]) =>
      addTensor(`${t.name}_beta`, dims, dt, floatBytes((await source.floats(t)).map((v) => v * beta), dt));
    if (!c) {
      nodes.push(nbitsNode(nodeName, inputs, output, w.q));
    } else if (cTensor && elementCount(cTensor) === w.q.N && (cDims.length === 1 || (cDims.length === 2 && cDims[0] === 1))) {
      // MatMulNBits' bias is 1-D: a [1, N] C gets a [N] copy
      let bias = c;
      if (beta !== 1) bias = await betaC(cTensor, [w.q.N]);
      else if (cDims.length === 2) bias = addTensor(`${c}_bias`, [w.q.N], dt, await source.bytes(cTensor));
      // input 4 is g_idx, not used
      nodes.push(nbitsNode(nodeName, [...inputs, '', bias], output, w.q));
    } else {
      // C of another shape (broadcast over rows, or [M, N]), or computed at run time: an Add after the node
      const product = names.fresh(`${output}_matmul`);
      nodes.push(nbitsNode(nodeName, inputs, product, w.q));
      let addend = c;
      if (beta !== 1 && cTensor) addend = await betaC(cTensor, cDims);
      else if (beta !== 1) {
        addend = names.fresh(`${c}_scaled`);
        const betaConst = addTensor(`${nodeName}_beta`, [], dt, floatBytes(Float32Array.of(beta), dt));
        nodes.push({ name: names.fresh(`${nodeName}_beta_mul`), opType: 'Mul', input: [c, betaConst], output: [addend] });
      }
      nodes.push({ name: names.fresh(`${nodeName}_bias_add`), opType: 'Add', input: [product, addend], output: [output] });
    }
    report.rewritten.push({ node: nodeName, op, weight: b, K: w.q.K, N: w.q.N });
  }
  graph.node = nodes;

  // the float weights (and biases copied with beta folded in) go unless something else (another
  // node, a subgraph, an output) still reads them
  const reads = new Set<string>();
  collectReads(graph, reads);
  graph.initializer = [...(graph.initializer ?? []).filter((t) => !released.has(t.name ?? '') || reads.has(t.name ?? '')), ...added];
  if (report.rewritten.length > 0 && !(model.opsetImport ?? []).some((o) => o.domain === MS_DOMAIN)) {
    model.opsetImport = [...(model.opsetImport ?? []), { domain: MS_DOMAIN, version: 1 }];
  }
  return report;
}
