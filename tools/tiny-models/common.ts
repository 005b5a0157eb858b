/** Facts shared by the tiny model sets: sizes, seeds, and the fp16 I/O boundary helpers. */
import type { Dim, GraphBuilder } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';

/** Seed of every random weight; changing it changes every model (and the test's expectations). */
export const SEED = 20240517;

export const TEXT_HIDDEN = 32;
export const TEXT_HEADS = 2;
export const TEXT_LAYERS = 1;
export const UNET_CHANNELS = 32;
export const UNET_TIME_DIM = 4 * UNET_CHANNELS;
export const UNET_HEADS = 2;
export const GROUPS = 8;
export const VAE_CHANNELS = 16;
export const LATENT_CHANNELS = 4;
export const SCALING_FACTOR = 0.18215;
/** Latent size of the UNet config (images of sample_size × 8 pixels), as SD 1.5's 64 → 512 px. */
export const SAMPLE_SIZE = 64;

/** How a float graph input/output is typed: real fp16 exports cast at the boundary. */
export type FloatIO = 'float32' | 'float16';

/** Declares a float input; with float16 I/O, casts it to the float32 the body computes in. */
export function floatInput(b: GraphBuilder, name: string, dims: Dim[], io: FloatIO): string {
  if (io === 'float32') return b.input(name, DType.FLOAT, dims);
  return b.op('Cast', [b.input(name, DType.FLOAT16, dims)], { to: DType.FLOAT });
}

/** Declares a float output; with float16 I/O, casts the float32 body value first. */
export function floatOutput(b: GraphBuilder, name: string, value: string, dims: Dim[], io: FloatIO): void {
  if (io === 'float32') b.output(name, value, DType.FLOAT, dims);
  else b.output(name, b.op('Cast', [value], { to: DType.FLOAT16 }), DType.FLOAT16, dims);
}
