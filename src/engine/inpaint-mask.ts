/**
 * The mask of diffusers' StableDiffusionInpaintPipeline: white = repaint, black = keep. The
 * mask processor (VaeImageProcessor with do_convert_grayscale, do_binarize, no normalize) reads it
 * as PIL's "L", scales to [0, 1] and binarises at 0.5; the latent mask is that binary mask
 * resized with torch's default interpolate (nearest); the masked image keeps only the black part.
 */

/** RGBA (W*H*4) -> [H*W] of 1 (repaint) or 0 (keep). Alpha is ignored, as PIL's RGBA -> L ignores it. */
export function binariseMask(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Float32Array {
  const n = width * height;
  if (rgba.length !== n * 4) throw new Error(`the mask has ${rgba.length} bytes, expected ${n * 4} for ${width}x${height} RGBA`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // PIL's ITU-R 601-2 luma in 16-bit fixed point, exactly as its convert("L") rounds it
    const l = (rgba[i * 4] * 19595 + rgba[i * 4 + 1] * 38470 + rgba[i * 4 + 2] * 7471 + 0x8000) >> 16;
    // l / 255 >= 0.5 in float32 is l >= 128 for integer l
    out[i] = l >= 128 ? 1 : 0;
  }
  return out;
}

/** masked_image = image * (mask < 0.5): [3, H, W] in [-1, 1] with the repainted region set to 0. */
export function maskImage(image: Float32Array, mask: Float32Array): Float32Array {
  const plane = mask.length;
  if (image.length !== 3 * plane) throw new Error('the image and the mask differ in size');
  const out = new Float32Array(image.length);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[c * plane + i] = mask[i] < 0.5 ? image[c * plane + i] : 0;
  }
  return out;
}

/** torch's nearest source index: floor(dst * (in / out)) in float32, clamped; exact halving and identity special-cased as torch does. */
function nearestIndex(dst: number, inSize: number, outSize: number): number {
  if (inSize === outSize) return dst;
  if (outSize === 2 * inSize) return dst >> 1;
  const scale = Math.fround(inSize / outSize);
  return Math.min(Math.floor(Math.fround(dst * scale)), inSize - 1);
}

/** torch.nn.functional.interpolate(mask, size=(outH, outW)) with its default mode, 'nearest', for one [H*W] plane. */
export function resizeMaskNearest(mask: Float32Array, inW: number, inH: number, outW: number, outH: number): Float32Array {
  const out = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const sy = nearestIndex(y, inH, outH);
    for (let x = 0; x < outW; x++) out[y * outW + x] = mask[sy * inW + nearestIndex(x, inW, outW)];
  }
  return out;
}

/**
 * The 4-channel UNet's per-step blend: (1 - mask) * known + mask * latents, the [h*w] mask
 * broadcast over the channels of [1, C, h, w] latents.
 */
export function blendKnownLatents(latents: Float32Array, known: Float32Array, mask: Float32Array): Float32Array {
  const plane = mask.length;
  if (latents.length !== known.length || latents.length % plane !== 0) throw new Error('the latents, known latents and mask differ in size');
  const out = new Float32Array(latents.length);
  for (let i = 0; i < out.length; i++) {
    const m = mask[i % plane];
    out[i] = Math.fround((1 - m) * known[i]) + Math.fround(m * latents[i]);
  }
  return out;
}
