/**
 * Rewrites of finished ONNX graphs, to turn the tiny models into replicas of real exports:
 *
 * - toFloat16: fp16 internals, as onnxconverter-common's convert_float_to_float16 leaves an export:
 *   every float initializer and Cast-to-float becomes float16, so the whole body computes in fp16.
 *   With keepIoTypes the float32 inputs and outputs stay float32 with Casts at the boundary (the
 *   `keep_io_types=True` exports); without it they become float16 too. Resize's `scales` must stay
 *   float32 (the ONNX spec says so; real converters patch it back by hand), as do the inputs of
 *   nodes listed in `keepFloat32`.
 * - adaptIo: an input or output renamed, given another element type (a Cast at the boundary) or
 *   other declared dims (fixed sizes where the real export fixes them).
 */
import { toHalfBits } from '../../src/engine/float16.ts';
import { DType, onnx, type DTypeCode, type OnnxTypes } from './proto.ts';

type Dim = number | string;

const FLOAT = DType.FLOAT;
const FLOAT16 = DType.FLOAT16;

export function decodeModel(bytes: Uint8Array): OnnxTypes.IModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: OnnxTypes.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

function halfBytes(t: OnnxTypes.ITensorProto): Uint8Array {
  let values: ArrayLike<number>;
  if (t.rawData && t.rawData.byteLength > 0) {
    const raw = t.rawData;
    values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  } else {
    values = t.floatData ?? [];
  }
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, toHalfBits(values[i]), true);
  return out;
}

function valueType(v: OnnxTypes.IValueInfoProto): number | null {
  return v.type?.tensorType?.elemType ?? null;
}

function setValueType(v: OnnxTypes.IValueInfoProto, type: number): void {
  if (v.type?.tensorType) v.type.tensorType.elemType = type;
}

/** Every use of `from` as a node input becomes `to`. */
function rewireInputs(graph: OnnxTypes.IGraphProto, from: string, to: string): void {
  for (const node of graph.node ?? []) node.input = (node.input ?? []).map((i) => (i === from ? to : i));
}

function castNode(input: string, output: string, to: number): OnnxTypes.INodeProto {
  return { opType: 'Cast', input: [input], output: [output], name: `cast_${output}`, attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to }] };
}

export interface Float16Options {
  /** Keep float32 graph inputs and outputs, casting at the boundary (default true). */
  keepIoTypes?: boolean;
}

/** See the module comment. Returns a new model; the input is not changed. */
export function toFloat16(model: OnnxTypes.IModelProto, options: Float16Options = {}): OnnxTypes.IModelProto {
  const keepIo = options.keepIoTypes ?? true;
  const m = decodeModel(encodeModel(model));
  const g = m.graph!;
  // Resize(X, roi, scales, sizes): roi and scales are float32 by the spec, whatever X is
  const mustStayFloat32 = new Set<string>();
  for (const node of g.node ?? []) {
    if (node.opType === 'Resize') for (const i of [1, 2]) if (node.input?.[i]) mustStayFloat32.add(node.input[i]);
  }
  for (const t of g.initializer ?? []) {
    if (t.dataType !== FLOAT || mustStayFloat32.has(t.name ?? '')) continue;
    t.rawData = halfBytes(t);
    t.floatData = [];
    t.dataType = FLOAT16;
  }
  for (const node of g.node ?? []) {
    if (node.opType !== 'Cast') continue;
    for (const a of node.attribute ?? []) if (a.name === 'to' && Number(a.i) === FLOAT) a.i = FLOAT16;
  }
  // shapes the converter cannot vouch for any more: onnxruntime infers them again
  g.valueInfo = [];
  const head: OnnxTypes.INodeProto[] = [];
  for (const input of g.input ?? []) {
    if (valueType(input) !== FLOAT) continue;
    if (!keepIo) {
      setValueType(input, FLOAT16);
      continue;
    }
    const inner = `${input.name}_fp16`;
    rewireInputs(g, input.name!, inner);
    head.push(castNode(input.name!, inner, FLOAT16));
  }
  const tail: OnnxTypes.INodeProto[] = [];
  for (const output of g.output ?? []) {
    if (valueType(output) !== FLOAT) continue;
    if (!keepIo) {
      setValueType(output, FLOAT16);
      continue;
    }
    const inner = `${output.name}_fp16`;
    for (const node of g.node ?? []) node.output = (node.output ?? []).map((o) => (o === output.name ? inner : o));
    rewireInputs(g, output.name!, inner);
    tail.push(castNode(inner, output.name!, FLOAT));
  }
  g.node = [...head, ...(g.node ?? []), ...tail];
  return m;
}

export interface IoChange {
  /** The name the real export gives it. */
  name?: string;
  /** The element type the real export declares (a Cast bridges it to what the graph computes in). */
  type?: DTypeCode;
  /** The dims the real export declares, fixed or symbolic. */
  dims?: Dim[];
}

function setDims(v: OnnxTypes.IValueInfoProto, dims: Dim[]): void {
  const tensor = v.type?.tensorType;
  if (!tensor) return;
  tensor.shape = { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
}

/** See the module comment. Returns a new model; the input is not changed. */
export function adaptIo(model: OnnxTypes.IModelProto, changes: { inputs?: Record<string, IoChange>; outputs?: Record<string, IoChange> }): OnnxTypes.IModelProto {
  const m = decodeModel(encodeModel(model));
  const g = m.graph!;
  const head: OnnxTypes.INodeProto[] = [];
  const tail: OnnxTypes.INodeProto[] = [];
  for (const [name, change] of Object.entries(changes.inputs ?? {})) {
    const input = (g.input ?? []).find((i) => i.name === name);
    if (!input) throw new Error(`the graph has no input ${name}`);
    const outer = change.name ?? name;
    const computes = valueType(input);
    if (change.type !== undefined && change.type !== computes) {
      const inner = `${name}_as_computed`;
      rewireInputs(g, name, inner);
      head.push(castNode(outer, inner, computes ?? FLOAT));
      setValueType(input, change.type);
    } else if (outer !== name) {
      rewireInputs(g, name, outer);
    }
    input.name = outer;
    if (change.dims) setDims(input, change.dims);
  }
  for (const [name, change] of Object.entries(changes.outputs ?? {})) {
    const output = (g.output ?? []).find((o) => o.name === name);
    if (!output) throw new Error(`the graph has no output ${name}`);
    const outer = change.name ?? name;
    const computes = valueType(output);
    if ((change.type !== undefined && change.type !== computes) || outer !== name) {
      const inner = `${name}_as_computed`;
      for (const node of g.node ?? []) node.output = (node.output ?? []).map((o) => (o === name ? inner : o));
      rewireInputs(g, name, inner);
      tail.push(change.type !== undefined && change.type !== computes ? castNode(inner, outer, change.type) : { opType: 'Identity', input: [inner], output: [outer], name: `rename_${outer}` });
      if (change.type !== undefined) setValueType(output, change.type);
    }
    output.name = outer;
    if (change.dims) setDims(output, change.dims);
  }
  g.valueInfo = [];
  g.node = [...head, ...(g.node ?? []), ...tail];
  return m;
}
