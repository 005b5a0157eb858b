/**
 * Decodes a job's image (PNG, JPEG, WebP, GIF...) and resizes it to the job's size, in the worker,
 * with the browser's own codecs (createImageBitmap + OffscreenCanvas: worker APIs, not the DOM).
 */

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

export async function decodeImageToRgba(
  bytes: ArrayBuffer,
  mimeType: string,
  width: number,
  height: number,
  field: ImageField = 'init_image',
): Promise<Uint8ClampedArray> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], mimeType ? { type: mimeType } : {}), {
      resizeWidth: width,
      resizeHeight: height,
      resizeQuality: 'high',
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
    });
  } catch (e) {
    throw new ImageDecodeError(`it is not an image the browser can decode (${e instanceof Error ? e.message : String(e)})`, field);
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new ImageDecodeError('no 2D canvas is available to read the image', field);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, width, height).data;
}
