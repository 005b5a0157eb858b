/**
 * The ideal denoiser for a N(0, I) latent prior: out_sample = √(1 − ᾱ_t) · sample, ᾱ from SD 1.5's
 * schedule looked up with Gather at the clamped timestep. With x_t = √ᾱ·x0 + √(1−ᾱ)·ε and
 * x0 ~ N(0, I), E[ε | x_t] = √(1−ᾱ)·x_t (x_t has unit variance), and the sigma parameterisation's
 * x_t/√ᾱ gives the same ε, so every scheduler keeps unit-variance latents and never meets NaN.
 * It ignores encoder_hidden_states (the input is still declared, as a real UNet has it).
 */
import { GraphBuilder } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';
import { LATENT_CHANNELS, SEED, TEXT_HIDDEN } from './common.ts';
import { sd15AlphasCumprod } from './schedule.ts';

/** |x| as √(x·x): exact for the integer-valued timesteps this sees (Abs is not in our op list). */
function abs(b: GraphBuilder, x: string): string {
  return b.op('Sqrt', [b.op('Mul', [x, x])]);
}

/** min(max(x, lo), hi) via max(d, 0) = (d + |d|)/2: Clip/Min/Max are not in our op list. */
function clamp(b: GraphBuilder, x: string, lo: number, hi: number): string {
  const positivePart = (d: string) => b.op('Mul', [b.op('Add', [d, abs(b, d)]), b.scalar(0.5)]);
  const atLeastLo = b.op('Add', [positivePart(b.op('Sub', [x, b.scalar(lo)])), b.scalar(lo)]);
  return b.op('Sub', [b.scalar(hi), positivePart(b.op('Sub', [b.scalar(hi), atLeastLo]))]);
}

export function buildAnalyticUNet(): GraphBuilder {
  const b = new GraphBuilder('unet_analytic', SEED);
  const sample = b.input('sample', DType.FLOAT, ['batch', LATENT_CHANNELS, 'height', 'width']);
  const timestep = b.input('timestep', DType.INT64, ['batch']);
  b.input('encoder_hidden_states', DType.FLOAT, ['batch', 'sequence', TEXT_HIDDEN]);

  const table = sd15AlphasCumprod();
  const t = clamp(b, b.op('Cast', [timestep], { to: DType.FLOAT }), 0, table.length - 1);
  const alphaBar = b.op('Gather', [b.tensor('alphas_cumprod', [table.length], table), b.op('Cast', [t], { to: DType.INT64 })], { axis: 0 });
  const noiseScale = b.op('Sqrt', [b.op('Sub', [b.scalar(1), alphaBar])]);
  const out = b.op('Mul', [sample, b.op('Unsqueeze', [noiseScale, b.int64([1, 2, 3])])]);
  b.output('out_sample', out, DType.FLOAT, ['batch', LATENT_CHANNELS, 'height', 'width']);
  return b;
}
