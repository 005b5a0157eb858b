/**
 * The hosted base64_crop, as the app answers it: with crop, the image's centred square, scaled down
 * to at most 1024 px with a side that is a multiple of 8, so it is ready as an init image of the
 * generation calls; without, the image as it is.
 */
import type { FittedSize } from './image-decode.ts';

export const MAX_CROP_SIDE = 1024;

export function cropRegion(width: number, height: number, crop: boolean): FittedSize {
  if (!crop) return { width, height };
  const side = Math.min(width, height);
  const out = Math.max(8, Math.min(MAX_CROP_SIDE, side) - (Math.min(MAX_CROP_SIDE, side) % 8));
  return {
    width: out,
    height: out,
    crop: { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), width: side, height: side },
  };
}
