/**
 * The quantization scheme the CLI and the bench use unless told otherwise: asymmetric (each block's
 * min/max range onto all 2^bits codes, with a zero point), and at 4 bits the least-squared-error
 * step search of block-quant.ts.
 *
 * Chosen by measurement on bench-sd (SD 1.5's UNet layout, 142 M parameters, seeded weights):
 * cosine similarity of out_sample to the fp32 UNet's on onnxruntime-node's CPU EP, four fixed
 * inputs (latents WxH, batch b; t = 500):
 *
 *   4 bits                 8x8 b2   16x16 b2  16x16 b1  32x32 b2
 *   asymmetric  min/max b32  0.98315  0.98898   0.99135   0.98952
 *   asymmetric  min/max b128 0.97880  0.98942   0.99105   0.98851   <- under 0.98
 *   symmetric   min/max b32  0.97986  0.98690   0.99101   0.98568   <- under 0.98
 *   symmetric   min/max b128 0.97725  0.98741   0.99029   0.98572   <- under 0.98
 *   asymmetric  search  b32  0.98758  0.99072   0.99286   0.99067
 *   asymmetric  search  b128 0.98565  0.98894   0.99188   0.98956
 *   symmetric   search  b32  0.98527  0.99128   0.99314   0.99038
 *   symmetric   search  b128 0.98640  0.99081   0.99252   0.99038
 *
 * At 8 bits every variant gives 0.99995-0.99998 on all four inputs. Plain min/max misses the 4-bit
 * target (>= 0.98) on the smallest input in three of four cases, asymmetric blocks of 128 included;
 * with the step search both schemes meet it everywhere, and neither is better across the inputs.
 * Asymmetric stays: it is the better of the two without the search, it fits blocks whose weights
 * do not straddle zero evenly (trained weights, unlike these seeded ones), and both write zero
 * points, so symmetric would store and run no cheaper.
 */
import type { QuantScheme } from './block-quant.ts';

export const DEFAULT_SCHEME: QuantScheme = 'asymmetric';
