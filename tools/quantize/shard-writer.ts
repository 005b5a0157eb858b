/**
 * Writes a graph's initializers into external-data shards beside it, named as Hugging Face repos
 * name them (model.onnx_data, model.onnx_data_1, …), each below `maxShardBytes`: a browser cannot
 * allocate one ArrayBuffer over about 2 GB, and ORT-web takes each shard as one buffer. Every
 * initializer then names its location, offset and length.
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { onnx, type OnnxTypes } from '../onnx/proto.ts';
import { DataType, type TensorSource } from './tensor-data.ts';

/** Below 2 GB (and below 2^31 bytes, the largest ArrayBuffer Chromium allocates). */
export const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;
/** Offsets aligned so that a typed array can view any tensor of a shard in place (8-byte int64, and room for SIMD loads). */
export const SHARD_ALIGNMENT = 64;
export const DEFAULT_SHARD_BASE = 'model.onnx_data';
/**
 * Initializers smaller than this stay inside the graph, as onnx's own external-data writer keeps
 * them (its size_threshold): ONNX shape inference, which onnxruntime runs while loading, cannot read
 * the axes or shape constants of Unsqueeze, Reshape, … from external data and refuses the graph.
 */
export const INLINE_BELOW_BYTES = 1024;

export interface ShardOptions {
  /** The first shard's file name; later ones append _1, _2, … */
  baseName?: string;
  maxShardBytes?: number;
}

export interface Shard {
  file: string;
  bytes: number;
  tensors: number;
}

function clearData(t: OnnxTypes.ITensorProto): void {
  t.rawData = new Uint8Array(0);
  t.floatData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.doubleData = [];
  t.uint64Data = [];
  t.externalData = [];
}

function setInline(t: OnnxTypes.ITensorProto, bytes: Uint8Array): void {
  clearData(t);
  t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  t.rawData = bytes;
}

export function shardName(baseName: string, index: number): string {
  return index === 0 ? baseName : `${baseName}_${index}`;
}

/**
 * Moves every initializer of `graph` of at least INLINE_BELOW_BYTES into shards under `dir` and
 * points it at its bytes there; smaller ones (and string tensors, which ONNX cannot store
 * externally) are written inline as raw_data.
 */
export async function writeShards(graph: OnnxTypes.IGraphProto, source: TensorSource, dir: string, options: ShardOptions = {}): Promise<Shard[]> {
  const baseName = options.baseName ?? DEFAULT_SHARD_BASE;
  const max = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const shards: Shard[] = [];
  let handle: FileHandle | null = null;
  let offset = 0;
  try {
    for (const t of graph.initializer ?? []) {
      if (t.dataType === DataType.STRING) continue;
      const bytes = await source.bytes(t);
      if (bytes.byteLength < INLINE_BELOW_BYTES) {
        // an inline tensor read from external data in the source model comes back inline
        setInline(t, bytes);
        continue;
      }
      if (bytes.byteLength > max) throw new Error(`initializer ${t.name} (${bytes.byteLength} bytes) does not fit in a shard of ${max} bytes`);
      let start = Math.ceil(offset / SHARD_ALIGNMENT) * SHARD_ALIGNMENT;
      if (!handle || start + bytes.byteLength > max) {
        await handle?.close();
        shards.push({ file: shardName(baseName, shards.length), bytes: 0, tensors: 0 });
        handle = await open(path.join(dir, shards[shards.length - 1].file), 'w');
        offset = 0;
        start = 0;
      }
      const shard = shards[shards.length - 1];
      if (start > offset) await handle.write(new Uint8Array(start - offset), 0, start - offset, offset);
      await handle.write(bytes, 0, bytes.byteLength, start);
      offset = start + bytes.byteLength;
      shard.bytes = offset;
      shard.tensors++;
      clearData(t);
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: 'location', value: shard.file },
        { key: 'offset', value: String(start) },
        { key: 'length', value: String(bytes.byteLength) },
      ];
    }
  } finally {
    await handle?.close();
  }
  return shards;
}
