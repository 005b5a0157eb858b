/**
 * A small builder for ONNX graphs: named values, initializers, nodes, and an encoder to
 * ModelProto bytes. Node and value names are derived from a counter and the current scope, so
 * the same build steps always give the same bytes.
 */
import { WEBGPU_OPS } from './ops.ts';
import { DType, IR_VERSION, OPSET, onnx, type DTypeCode, type OnnxTypes } from './proto.ts';

export type Dim = number | string;

export type AttrValue = number | string | number[] | { floats: number[] } | { float: number };

/** Attributes are integers unless wrapped as { float } / { floats }: ONNX types them strictly. */
function makeAttribute(name: string, value: AttrValue): OnnxTypes.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return { name, type: T.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.FLOAT, f: value.float };
}

function valueInfo(name: string, elemType: DTypeCode, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function littleEndianBytes(data: Float32Array | Int32Array | BigInt64Array | Uint8Array): Uint8Array {
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  if (data instanceof Float32Array) data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else if (data instanceof Int32Array) data.forEach((v, i) => view.setInt32(i * 4, v, true));
  else if (data instanceof BigInt64Array) data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  else out.set(data);
  return out;
}

export class GraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly scopes: string[] = [];
  private counter = 0;
  /** Small int64 constants are shared so that e.g. every Reshape to [0, C, -1] uses one tensor. */
  private readonly constCache = new Map<string, string>();

  constructor(
    readonly name: string,
    /** The seed that every random weight of this graph derives from. */
    readonly seed: number,
  ) {}

  /** Runs `body` with `scope` prefixed to every name made inside it (e.g. "down/resnet"). */
  scope<T>(scope: string, body: () => T): T {
    this.scopes.push(scope);
    try {
      return body();
    } finally {
      this.scopes.pop();
    }
  }

  /** The current scope path, used as the key of a weight's random stream. */
  path(name: string): string {
    return [...this.scopes, name].join('/');
  }

  private fresh(base: string): string {
    let name = this.path(base);
    if (this.used.has(name)) name = `${name}_${this.counter++}`;
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: DTypeCode, dims: Dim[]): string {
    if (this.used.has(name)) throw new Error(`duplicate value name ${name}`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /**
   * Declares `value` as the graph output `name`. ONNX outputs are produced by a node, so the
   * producing node's output is renamed (Identity is not in the WebGPU op list we keep to).
   */
  output(name: string, value: string, elemType: DTypeCode, dims: Dim[]): void {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`duplicate value name ${name}`);
      const producer = this.nodes.find((n) => n.output?.includes(value));
      if (!producer?.output) throw new Error(`output ${name}: ${value} is not produced by a node`);
      for (const node of this.nodes) {
        if (node.input) node.input = node.input.map((v) => (v === value ? name : v));
        if (node.output) node.output = node.output.map((v) => (v === value ? name : v));
      }
      this.used.add(name);
    }
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A constant tensor stored as an initializer (Constant nodes are avoided: not in the op list). */
  tensor(base: string, dims: number[], data: Float32Array | Int32Array | BigInt64Array | Uint8Array, elemType?: DTypeCode): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`${base}: ${data.length} values for dims [${dims}]`);
    const dataType =
      elemType ??
      (data instanceof Float32Array ? DType.FLOAT : data instanceof Int32Array ? DType.INT32 : data instanceof BigInt64Array ? DType.INT64 : DType.BOOL);
    const name = this.fresh(base);
    this.initializers.push({ name, dims, dataType, rawData: littleEndianBytes(data) });
    return name;
  }

  /** A shared int64 constant (shapes, axes, slice bounds). */
  int64(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = `const_i64_${values.map((v) => (v < 0 ? `m${-v}` : String(v))).join('_')}`;
      this.used.add(name);
      this.initializers.push({
        name,
        dims: [values.length],
        dataType: DType.INT64,
        rawData: littleEndianBytes(BigInt64Array.from(values.map((v) => BigInt(v)))),
      });
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A shared float scalar (rank 0), e.g. the 1 in 1 + erf(x). */
  scalar(value: number): string {
    const key = `f32:${value}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = `const_f32_${this.constCache.size}`;
      this.used.add(name);
      this.initializers.push({ name, dims: [], dataType: DType.FLOAT, rawData: littleEndianBytes(Float32Array.of(value)) });
      this.constCache.set(key, name);
    }
    return name;
  }

  /** Adds a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(opType, inputs, 1, attrs)[0];
  }

  /** Adds a node with `outputs` outputs. */
  opN(opType: string, inputs: string[], outputs: number, attrs: Record<string, AttrValue> = {}): string[] {
    if (!WEBGPU_OPS.has(opType)) throw new Error(`${opType} is not in the WebGPU op list (tools/onnx/ops.ts)`);
    const nodeName = this.fresh(opType);
    const outs = Array.from({ length: outputs }, (_, i) => this.fresh(`${opType}_out${outputs > 1 ? i : ''}`));
    this.nodes.push({
      name: nodeName,
      opType,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
    });
    return outs;
  }

  /** The op types used, for reports and the op allowlist check. */
  opTypes(): string[] {
    return [...new Set(this.nodes.map((n) => n.opType ?? ''))].sort();
  }

  encode(docString = ''): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'sd-browser tools/generate-tiny-models',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
