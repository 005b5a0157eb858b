/** PNG encoding of pipeline output, via fast-png (pure JS: runs in the worker and in Node). */
import { encode } from 'fast-png';

export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  return encode({ width, height, data: rgb, channels: 3, depth: 8 });
}

/** RGBA, for images whose alpha matters (an upscaled or cropped picture keeps its transparency). */
export function encodeRgbaPng(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Uint8Array {
  return encode({ width, height, data: rgba, channels: 4, depth: 8 });
}
