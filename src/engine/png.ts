/** PNG encoding of pipeline output, via fast-png (pure JS: runs in the worker and in Node). */
import { encode } from 'fast-png';

export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  return encode({ width, height, data: rgb, channels: 3, depth: 8 });
}
