/**
 * Decodes a job's image (PNG, JPEG, WebP, GIF...) and resizes it to the job's size, in the worker,
 * with the browser's own codecs (createImageBitmap + OffscreenCanvas: worker APIs, not the DOM).
 */
import type { RgbaImage } from './jobs.ts';

/** Which of the job's images failed: the worker reports it as that outcome kind. */
export type ImageField = 'init_image' | 'mask_image';

export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
  constructor(
    message: string,
    readonly field: ImageField = 'init_image',
  ) {
    super(message);
  }
}

/** The size to decode at, and optionally the part of the image to take (all of it when absent). */
export interface FittedSize {
  width: number;
  height: number;
  crop?: { x: number; y: number; width: number; height: number };
}

const DECODE_OPTIONS = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' } as const;

export async function decodeImageToRgba(
  bytes: ArrayBuffer,
  mimeType: string,
  width: number,
  height: number,
  field: ImageField = 'init_image',
): Promise<Uint8ClampedArray> {
  let bitmap: ImageBitmap;
  try {
    // One decode that resizes as it goes: the size is known.
    bitmap = await createImageBitmap(blobOf(bytes, mimeType), { ...DECODE_OPTIONS, resizeWidth: width, resizeHeight: height, resizeQuality: 'high' });
  } catch (e) {
    throw notDecodable(e, field);
  }
  return readPixels(bitmap, width, height, field);
}

/**
 * Decodes an image at the size `fit` picks from its own (outpainting keeps the image's size, an
 * upscaler reads it as it is): the first decode learns the size, a second resizes only when needed.
 */
export async function decodeImageFitted(
  bytes: ArrayBuffer,
  mimeType: string,
  fit: (width: number, height: number) => FittedSize,
  field: ImageField = 'init_image',
): Promise<RgbaImage & { sourceWidth: number; sourceHeight: number }> {
  let bitmap: ImageBitmap;
  let size: FittedSize;
  let source: { width: number; height: number };
  try {
    bitmap = await createImageBitmap(blobOf(bytes, mimeType), DECODE_OPTIONS);
    source = { width: bitmap.width, height: bitmap.height };
    size = fit(bitmap.width, bitmap.height);
    const c = size.crop ?? { x: 0, y: 0, width: bitmap.width, height: bitmap.height };
    if (size.crop || size.width !== bitmap.width || size.height !== bitmap.height) {
      const resize = { ...DECODE_OPTIONS, resizeWidth: size.width, resizeHeight: size.height, resizeQuality: 'high' } as const;
      const resized = await createImageBitmap(bitmap, c.x, c.y, c.width, c.height, resize);
      bitmap.close();
      bitmap = resized;
    }
  } catch (e) {
    throw notDecodable(e, field);
  }
  return { rgba: readPixels(bitmap, size.width, size.height, field), width: size.width, height: size.height, sourceWidth: source.width, sourceHeight: source.height };
}

function blobOf(bytes: ArrayBuffer, mimeType: string): Blob {
  return new Blob([bytes], mimeType ? { type: mimeType } : {});
}

function notDecodable(e: unknown, field: ImageField): ImageDecodeError {
  return new ImageDecodeError(`it is not an image the browser can decode (${e instanceof Error ? e.message : String(e)})`, field);
}

function readPixels(bitmap: ImageBitmap, width: number, height: number, field: ImageField): Uint8ClampedArray {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new ImageDecodeError('no 2D canvas is available to read the image', field);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, width, height).data;
}
