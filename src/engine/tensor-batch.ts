/**
 * Host tensors along their batch (first) dimension: the pieces of guidance batches, of exports
 * whose graphs fix the batch, and of conditioning repeated for a batch.
 */
import type { HostTensor } from './runtime.ts';

function sameType(like: HostTensor['data'], length: number): HostTensor['data'] {
  return like instanceof Int32Array ? new Int32Array(length) : new Float32Array(length);
}

/** Item `i` of the batch, as a batch of one. */
export function sliceBatch(t: HostTensor, i: number): HostTensor {
  const per = t.data.length / t.dims[0];
  return { data: t.data.slice(i * per, (i + 1) * per), dims: [1, ...t.dims.slice(1)] };
}

/** The parts one after the other along the batch dimension. */
export function concatBatch(parts: HostTensor[]): HostTensor {
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  const data = sameType(parts[0].data, total);
  let off = 0;
  for (const p of parts) {
    data.set(p.data, off);
    off += p.data.length;
  }
  return { data, dims: [parts.reduce((n, p) => n + p.dims[0], 0), ...parts[0].dims.slice(1)] };
}

/** The tensor's batch repeated `times` over: [b, ...] -> [b * times, ...]. */
export function repeatBatch(t: HostTensor, times: number): HostTensor {
  return times === 1 ? t : concatBatch(Array.from({ length: times }, () => t));
}
