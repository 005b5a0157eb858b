/**
 * SD 1.5's alphas_cumprod exactly as diffusers computes it with torch on an x86 CPU:
 * betas = torch.linspace(√0.00085, √0.012, 1000, dtype=float32) ** 2, cumprod(1 - betas).
 *
 * torch's CPU linspace fills 8-float AVX2 vectors: each vector starts at start + step·idx
 * (end - step·(n-1-idx) from halfway on) and continues base + step·j, both as fused
 * multiply-adds in float32; cumprod accumulates in double (acc_type<float> on CPU) and rounds each
 * output to float32. Emulating both reproduces torch 1.13's (AVX2) table bit for bit; other
 * torch builds differ by at most an ulp of a beta.
 */
const f32 = Math.fround;

export function sd15AlphasCumprod(n = 1000, betaStart = 0.00085, betaEnd = 0.012): Float32Array {
  const start = f32(Math.sqrt(betaStart));
  const end = f32(Math.sqrt(betaEnd));
  const step = f32(f32(end - start) / (n - 1));
  const halfway = Math.floor(n / 2);
  const vector = 8;
  const roots = new Float32Array(n);
  for (let idx = 0; idx < n; idx += vector) {
    // a float32 product with a small integer is exact in float64, so f32(a + b·c) is the float32 fma
    const base = idx < halfway ? f32(start + step * idx) : f32(end - step * (n - idx - 1));
    for (let j = 0; j < vector && idx + j < n; j++) roots[idx + j] = f32(base + step * j);
  }
  const out = new Float32Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    const beta = f32(roots[i] * roots[i]);
    acc *= f32(1 - beta);
    out[i] = acc;
  }
  return out;
}
