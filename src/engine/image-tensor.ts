/** Pixels <-> the VAE's [-1, 1] NCHW tensors, as diffusers' VaeImageProcessor does it. */

/** RGBA bytes (W*H*4) -> float32 [3, H, W] in [-1, 1]; alpha is ignored as diffusers converts to RGB. */
export function rgbaToTensor(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = rgba[i * 4] / 127.5 - 1;
    out[plane + i] = rgba[i * 4 + 1] / 127.5 - 1;
    out[2 * plane + i] = rgba[i * 4 + 2] / 127.5 - 1;
  }
  return out;
}

/**
 * float32 [3, H, W] in [-1, 1] (one image of a decoder's batch, starting at `offset`) -> RGB bytes,
 * (x / 2 + 0.5).clamp(0, 1) * 255 rounded, as diffusers' postprocess + numpy_to_pil.
 */
export function tensorToRgb(t: Float32Array, width: number, height: number, offset = 0): Uint8Array {
  const plane = width * height;
  const out = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) {
      const v = Math.min(1, Math.max(0, t[base + i] / 2 + 0.5));
      out[i * 3 + c] = Math.round(v * 255);
    }
  }
  return out;
}
