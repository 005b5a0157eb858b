/**
 * The quantization scheme the CLI and the bench use unless told otherwise: asymmetric (each block's
 * min/max onto all 2^bits codes, with a zero point).
 *
 * Chosen by measurement on bench-sd (SD 1.5's UNet layout, 142 M parameters), onnxruntime-node CPU,
 * 16x16 latents, batch 1, t = 500, cosine similarity of out_sample to the fp32 UNet's:
 *
 *   setting        asymmetric  symmetric
 *   8-bit, b32     0.99997     0.99997
 *   8-bit, b128    0.99997     0.99997
 *   4-bit, b32     0.99135     0.99101
 *   4-bit, b128    0.99105     0.99029
 *
 * Both meet the targets (>= 0.995 at 8 bits, >= 0.98 at 4); asymmetric is as good at 8 bits and
 * better at 4, where symmetric leaves one of the 16 codes unused and spends range on the side of
 * zero a block does not reach. Both write zero points, so neither is cheaper to store or to run.
 */
import type { QuantScheme } from './block-quant.ts';

export const DEFAULT_SCHEME: QuantScheme = 'asymmetric';
