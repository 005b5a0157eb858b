/**
 * The declared inputs of an ONNX graph, read from its bytes before any session exists: enough of
 * the protobuf wire format to walk ModelProto.graph.input, skipping everything else (initializers
 * included) by length. The engine uses it to fix symbolic dimensions it knows (the text length)
 * through freeDimensionOverrides, which must be given when the session is created.
 */

/** The bytes are not an ONNX model: the protobuf does not parse, or it has no graph. */
export class OnnxParseError extends Error {
  override name = 'OnnxParseError';
}

export interface GraphInput {
  name: string;
  /** Each dimension's fixed size, or its symbolic name. */
  dims: (number | string)[];
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

// Field numbers of onnx.proto3: ModelProto.graph = 7, GraphProto.input = 11, ValueInfoProto.name = 1 / type = 2,
// TypeProto.tensor_type = 1, Tensor.shape = 2, TensorShapeProto.dim = 1, Dimension.dim_value = 1 / dim_param = 2.
function valueInfo(r: Reader): GraphInput {
  let name = '';
  const dims: (number | string)[] = [];
  each(r, (no, sub) => {
    if (no === 1 && sub) name = sub.text();
    if (no !== 2 || !sub) return;
    each(sub, (tn, tensor) => {
      if (tn !== 1 || !tensor) return;
      each(tensor, (sn, shape) => {
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
  return { name, dims };
}

/** The graph's inputs as declared; initializers listed as inputs (old exports) are included. */
export function readGraphInputs(model: Uint8Array): GraphInput[] {
  const inputs: GraphInput[] = [];
  let graphs = 0;
  each(new Reader(model), (no, graph) => {
    if (no !== 7 || !graph) return;
    graphs++;
    each(graph, (gn, input) => {
      if (gn === 11 && input) inputs.push(valueInfo(input));
    });
  });
  if (graphs === 0) throw new OnnxParseError('the file has no graph');
  return inputs;
}

/**
 * freeDimensionOverrides for what a Stable Diffusion model's text inputs fix: the token sequence
 * (input_ids' second dimension, encoder_hidden_states' second) is the tokenizer's length.
 * Batch, height and width stay free: they change with the request.
 */
export function textLengthOverrides(inputs: GraphInput[], sequenceLength: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const input of inputs) {
    if (input.name !== 'input_ids' && input.name !== 'encoder_hidden_states') continue;
    const d = input.dims[1];
    if (typeof d === 'string' && d !== '?' && d !== '') out[d] = sequenceLength;
  }
  return out;
}
