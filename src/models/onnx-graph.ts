/**
 * What an ONNX graph declares, read from its bytes before any session exists: its inputs and
 * outputs (names, element types, fixed or symbolic dimensions), the external-data files its
 * weights live in, and the operator domains and types it uses. Enough of the protobuf wire format
 * to walk ModelProto, skipping everything else (weights included) by length, so a 6 MB graph whose
 * weights are in shards is read in a millisecond and a graph with inline weights is read without
 * copying them.
 *
 * Field numbers are onnx.proto3's: ModelProto.opset_import = 8, .graph = 7; GraphProto.node = 1,
 * .initializer = 5, .input = 11, .output = 12; NodeProto.op_type = 4, .domain = 7; ValueInfoProto
 * .name = 1, .type = 2; TypeProto.tensor_type = 1; Tensor.elem_type = 1, .shape = 2;
 * TensorShapeProto.dim = 1; Dimension.dim_value = 1, .dim_param = 2; TensorProto.external_data = 13
 * (StringStringEntryProto key = 1, value = 2), .data_location = 14; OperatorSetIdProto.domain = 1.
 */

/** The bytes are not an ONNX model: the protobuf does not parse, or it has no graph. */
export class OnnxParseError extends Error {
  override name = 'OnnxParseError';
}

/** TensorProto.DataType codes, as onnxruntime names them. */
const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

export interface GraphValue {
  name: string;
  /** onnxruntime's name of the element type ('float32', 'float16', 'int64', …), '' when the graph leaves it out. */
  type: string;
  /** Each dimension's fixed size, or its symbolic name ('?' when it has neither). */
  dims: (number | string)[];
}

/** Kept for callers that only need names and dimensions. */
export type GraphInput = GraphValue;

export interface GraphInfo {
  inputs: GraphValue[];
  outputs: GraphValue[];
  /** The external-data files the weights name (TensorProto.external_data "location"), in first-use order. */
  externalData: string[];
  /** Operator domains in use ('' is the default ONNX domain; 'com.microsoft' holds contrib ops such as MatMulNBits). */
  domains: string[];
  /** Every operator type the graph's nodes use. */
  opTypes: string[];
}

class Reader {
  pos: number;
  constructor(
    private readonly b: Uint8Array,
    start = 0,
    readonly end = b.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new OnnxParseError('truncated varint');
      const byte = this.b[this.pos++];
      // sizes here stay far below 2^53; multiplication avoids 32-bit shifts
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
      shift += 7;
      if (shift > 63) throw new OnnxParseError('varint too long');
    }
  }

  /** The next field's number and a reader over its bytes (length-delimited), or null for scalar fields. */
  field(): { no: number; sub: Reader | null; value: number } {
    const key = this.varint();
    const no = Math.floor(key / 8);
    // Protobuf has no field 0: zeros (a file never written, say) are not a model.
    if (no === 0) throw new OnnxParseError('field number 0');
    switch (key & 7) {
      case 0:
        return { no, sub: null, value: this.varint() };
      case 1:
      case 5:
        this.pos += (key & 7) === 1 ? 8 : 4;
        if (this.pos > this.end) throw new OnnxParseError('truncated field');
        return { no, sub: null, value: 0 };
      case 2: {
        const len = this.varint();
        const sub = new Reader(this.b, this.pos, this.pos + len);
        this.pos += len;
        if (this.pos > this.end) throw new OnnxParseError('truncated field');
        return { no, sub, value: len };
      }
      default:
        throw new OnnxParseError(`unsupported wire type ${key & 7}`);
    }
  }

  text(): string {
    return new TextDecoder().decode(this.b.subarray(this.pos, this.end));
  }
}

function each(r: Reader, visit: (no: number, sub: Reader | null, value: number) => void): void {
  while (!r.done) {
    const f = r.field();
    visit(f.no, f.sub, f.value);
  }
}

function valueInfo(r: Reader): GraphValue {
  let name = '';
  let type = '';
  const dims: (number | string)[] = [];
  each(r, (no, sub) => {
    if (no === 1 && sub) name = sub.text();
    if (no !== 2 || !sub) return;
    each(sub, (tn, tensor) => {
      if (tn !== 1 || !tensor) return;
      each(tensor, (sn, shape, value) => {
        if (sn === 1 && !shape) type = ELEMENT_TYPES[value] ?? `type ${value}`;
        if (sn !== 2 || !shape) return;
        each(shape, (dn, dim) => {
          if (dn !== 1 || !dim) return;
          let d: number | string = '?';
          each(dim, (vn, vsub, value) => {
            if (vn === 1 && !vsub) d = value;
            if (vn === 2 && vsub) d = vsub.text();
          });
          dims.push(d);
        });
      });
    });
  });
  return { name, type, dims };
}

/** An initializer's external-data location, when its data lives outside the graph. */
function externalLocation(r: Reader): string | null {
  let location: string | null = null;
  let external = false;
  each(r, (no, sub, value) => {
    if (no === 14 && !sub) external = value === 1;
    if (no !== 13 || !sub) return;
    let key = '';
    let text = '';
    each(sub, (kn, kv) => {
      if (kn === 1 && kv) key = kv.text();
      if (kn === 2 && kv) text = kv.text();
    });
    if (key === 'location') location = text;
  });
  return external || location !== null ? location : null;
}

/** Everything the graph declares (see GraphInfo); throws OnnxParseError for bytes that are not a model. */
export function readGraphInfo(model: Uint8Array): GraphInfo {
  const info: GraphInfo = { inputs: [], outputs: [], externalData: [], domains: [], opTypes: [] };
  const domains = new Set<string>();
  const opTypes = new Set<string>();
  const external = new Set<string>();
  let graphs = 0;
  each(new Reader(model), (no, sub) => {
    if (no === 8 && sub) {
      each(sub, (on, os) => {
        if (on === 1 && os) domains.add(os.text());
      });
      return;
    }
    if (no !== 7 || !sub) return;
    graphs++;
    each(sub, (gn, part) => {
      if (!part) return;
      if (gn === 11) info.inputs.push(valueInfo(part));
      else if (gn === 12) info.outputs.push(valueInfo(part));
      else if (gn === 5) {
        const location = externalLocation(part);
        if (location !== null) external.add(location);
      } else if (gn === 1) {
        let domain = '';
        each(part, (nn, ns) => {
          if (nn === 4 && ns) opTypes.add(ns.text());
          if (nn === 7 && ns) domain = ns.text();
        });
        domains.add(domain);
      }
    });
  });
  if (graphs === 0) throw new OnnxParseError('the file has no graph');
  // the default domain is spelt '' or 'ai.onnx'
  info.domains = [...domains].map((d) => (d === 'ai.onnx' ? '' : d)).filter((d, i, all) => all.indexOf(d) === i).sort();
  info.opTypes = [...opTypes].sort();
  info.externalData = [...external];
  return info;
}

/** The graph's inputs as declared; initializers listed as inputs (old exports) are included. */
export function readGraphInputs(model: Uint8Array): GraphValue[] {
  return readGraphInfo(model).inputs;
}

/**
 * freeDimensionOverrides for what a Stable Diffusion model's text inputs fix: the token sequence
 * (input_ids' second dimension, encoder_hidden_states' second) is the tokenizer's length.
 * Batch, height and width stay free: they change with the request.
 */
export function textLengthOverrides(inputs: GraphValue[], sequenceLength: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const input of inputs) {
    if (input.name !== 'input_ids' && input.name !== 'encoder_hidden_states') continue;
    const d = input.dims[1];
    if (typeof d === 'string' && d !== '?' && d !== '') out[d] = sequenceLength;
  }
  return out;
}
