/**
 * Tile geometry for running an image network over a large image piece by piece: where the tiles
 * go along one axis, and how much each tile's output counts at each output pixel.
 *
 * A convolutional network sees zeros past a tile's edge where the whole image has pixels, so its
 * output is wrong within its receptive radius of every cut edge. Each tile therefore gives no
 * weight to the `margin` input pixels nearest an edge it shares with a neighbour, and blends in
 * linearly across the rest of the shared strip. With a margin at least the network's receptive
 * radius, the tiled result is the one-shot result; the feathering hides what a smaller margin
 * leaves. Weights are separable (a tile's weight is its column weight times its row weight), so
 * normalising each axis on its own makes them sum to one at every output pixel.
 */

export interface TileOptions {
  /** Input pixels per side of one tile (one network run); the image's size where it is smaller. */
  tileSize?: number;
  /** Input pixels two neighbouring tiles share at least (the last tile is aligned to the image's end, so it may share more). */
  overlap?: number;
  /** Input pixels at a shared edge that get no weight; at most half the overlap less one pixel of ramp. */
  margin?: number;
}

export interface AxisTiles {
  /** Input offset of each tile along the axis, ascending. */
  starts: number[];
  /** Tile length along the axis in input pixels (the same for every tile, so a backend sees one shape). */
  length: number;
  /**
   * Per tile, the weight of each of its `scale * length` output pixels, already divided by the sum
   * over all tiles at that pixel.
   */
  weights: Float32Array[];
}

/** Tile offsets along an axis of `size` pixels: steps of `tileSize - overlap`, the last aligned to the end. */
export function tileStarts(size: number, tileSize: number, overlap: number): number[] {
  if (!(tileSize >= 1 && Number.isInteger(tileSize))) throw new Error(`tile size ${tileSize}: a positive integer is needed`);
  if (!(overlap >= 0 && overlap < tileSize && Number.isInteger(overlap))) throw new Error(`overlap ${overlap}: an integer in [0, tile size) is needed`);
  if (size <= tileSize) return [0];
  const step = tileSize - overlap;
  const starts: number[] = [];
  for (let at = 0; at + tileSize < size; at += step) starts.push(at);
  starts.push(size - tileSize);
  return starts;
}

/** Tiles and their normalised blend weights along one axis of `size` input pixels, for an upscale by `scale`. */
export function axisTiles(size: number, scale: number, options: Required<TileOptions>): AxisTiles {
  const { tileSize, overlap } = options;
  const starts = tileStarts(size, tileSize, overlap);
  const length = Math.min(tileSize, size);
  // the ramp needs at least one pixel, so a small overlap lowers the margin rather than leaving a gap
  const margin = Math.max(0, Math.min(options.margin, Math.floor((overlap - 1) / 2)));
  const ramp = Math.max(1, overlap - 2 * margin);
  const rise = (d: number) => Math.min(1, Math.max(0, (d - margin) / ramp));
  const outLength = scale * length;
  const weights = starts.map((start) => {
    const w = new Float32Array(outLength);
    const hasBefore = start > 0;
    const hasAfter = start + length < size;
    for (let o = 0; o < outLength; o++) {
      // distance of the output pixel's centre from each tile edge, in input pixels
      const d = (o + 0.5) / scale;
      w[o] = (hasBefore ? rise(d) : 1) * (hasAfter ? rise(length - d) : 1);
    }
    return w;
  });
  const total = new Float64Array(scale * size);
  starts.forEach((start, t) => {
    for (let o = 0; o < outLength; o++) total[scale * start + o] += weights[t][o];
  });
  for (let o = 0; o < total.length; o++) {
    if (!(total[o] > 0)) throw new Error(`tiles of ${tileSize} with overlap ${overlap} leave output pixel ${o} of ${total.length} without weight`);
  }
  starts.forEach((start, t) => {
    for (let o = 0; o < outLength; o++) weights[t][o] /= total[scale * start + o];
  });
  return { starts, length, weights };
}
