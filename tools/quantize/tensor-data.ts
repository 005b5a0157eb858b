/**
 * The bytes of an ONNX initializer wherever the model keeps them: raw_data, the typed repeated
 * fields (float_data, int32_data, …), or external data files beside the graph (TensorProto
 * external_data "location"/"offset"/"length", data_location EXTERNAL), so that the rewriter and the
 * shard writer see one little-endian byte layout for every tensor.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { float16ToFloat32 } from '../../src/engine/float16.ts';
import { onnx, type OnnxTypes } from '../onnx/proto.ts';

/** protobufjs decodes int64 fields as Long objects (the `long` package is installed), or plain numbers. */
export type Int64 = number | { toNumber(): number };

export function int64(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export const DataType = onnx.TensorProto.DataType;
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** Bytes per element of the fixed-size element types; 0 for strings and sub-byte types. */
export function elementBytes(dataType: number): number {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 8;
    case DataType.COMPLEX128:
      return 16;
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
    case DataType.INT16:
    case DataType.UINT16:
      return 2;
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
      return 1;
    default:
      return 0;
  }
}

export function dimsOf(t: OnnxTypes.ITensorProto): number[] {
  return (t.dims ?? []).map(int64);
}

export function elementCount(t: OnnxTypes.ITensorProto): number {
  return dimsOf(t).reduce((a, b) => a * b, 1);
}

export function isExternal(t: OnnxTypes.ITensorProto): boolean {
  return t.dataLocation === EXTERNAL;
}

export interface ExternalRef {
  location: string;
  offset: number;
  /** null: to the end of the file (the key is optional in ONNX). */
  length: number | null;
}

export function externalRef(t: OnnxTypes.ITensorProto): ExternalRef {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  if (!location) throw new Error(`initializer ${t.name}: external data without a location`);
  const length = entries.get('length');
  return { location, offset: Number(entries.get('offset') ?? 0), length: length === undefined ? null : Number(length) };
}

/**
 * The external-data file a location names, inside `dir`: a graph from elsewhere must not make this
 * tool read (or, through the copy of the model dir, publish) a file outside the model's folder.
 */
export function externalPath(dir: string, location: string): string {
  const resolved = path.resolve(dir, location);
  const rel = path.relative(dir, resolved);
  if (path.isAbsolute(location) || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`external data location ${JSON.stringify(location)} is outside ${dir}`);
  }
  return resolved;
}

/** The distinct external-data files the graph's initializers name, in first-use order. */
export function externalLocations(graph: OnnxTypes.IGraphProto): string[] {
  const seen = new Set<string>();
  for (const t of graph.initializer ?? []) if (isExternal(t)) seen.add(externalRef(t).location);
  return [...seen];
}

function viewBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The typed repeated fields as little-endian bytes (ONNX stores sub-32-bit types one per int32_data entry). */
function typedFieldBytes(t: OnnxTypes.ITensorProto): Uint8Array {
  const dt = t.dataType ?? 0;
  const n = elementCount(t);
  switch (dt) {
    case DataType.FLOAT:
      return viewBytes(Float32Array.from(t.floatData ?? []));
    case DataType.DOUBLE:
      return viewBytes(Float64Array.from(t.doubleData ?? []));
    case DataType.INT32:
      return viewBytes(Int32Array.from(t.int32Data ?? []));
    case DataType.INT64:
      return viewBytes(BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()))));
    case DataType.UINT32:
    case DataType.UINT64: {
      const values = (t.uint64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()));
      return dt === DataType.UINT64 ? viewBytes(BigUint64Array.from(values)) : viewBytes(Uint32Array.from(values, Number));
    }
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
    case DataType.INT16:
    case DataType.UINT16:
      return viewBytes(Uint16Array.from(t.int32Data ?? []));
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
      return Uint8Array.from(t.int32Data ?? []);
    default:
      if (n === 0) return new Uint8Array(0);
      throw new Error(`initializer ${t.name}: data type ${dt} is not supported`);
  }
}

/** Reads initializer bytes for one model folder (external locations are relative to it). */
export class TensorSource {
  constructor(readonly dir: string) {}

  async bytes(t: OnnxTypes.ITensorProto): Promise<Uint8Array> {
    let out: Uint8Array;
    if (isExternal(t)) out = await this.readExternal(t);
    else if (t.rawData && t.rawData.length > 0) out = t.rawData;
    else out = typedFieldBytes(t);
    const expected = elementCount(t) * elementBytes(t.dataType ?? 0);
    if (elementBytes(t.dataType ?? 0) > 0 && out.byteLength !== expected) {
      throw new Error(`initializer ${t.name}: ${out.byteLength} bytes of data for ${expected} expected`);
    }
    return out;
  }

  /** The tensor as float32 values (float32 and float16 tensors). */
  async floats(t: OnnxTypes.ITensorProto): Promise<Float32Array> {
    const bytes = await this.bytes(t);
    // a copy aligned for the typed view: raw_data inside a protobuf buffer may sit at any offset
    // (and Buffer's slice() would not copy)
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    if (t.dataType === DataType.FLOAT) return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    if (t.dataType === DataType.FLOAT16) return float16ToFloat32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
    throw new Error(`initializer ${t.name}: data type ${t.dataType} is not a float type`);
  }

  private async readExternal(t: OnnxTypes.ITensorProto): Promise<Uint8Array> {
    const ref = externalRef(t);
    const file = externalPath(this.dir, ref.location);
    const length = ref.length ?? (await stat(file)).size - ref.offset;
    const handle = await open(file, 'r');
    try {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, ref.offset + done);
        if (bytesRead === 0) throw new Error(`initializer ${t.name}: ${ref.location} ends before offset ${ref.offset} + ${length}`);
        done += bytesRead;
      }
      return out;
    } finally {
      await handle.close();
    }
  }
}
