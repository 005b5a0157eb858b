/**
 * The engine's helper graphs: small ONNX models that let the WebGPU denoising loop keep its tensors
 * on the GPU between steps (after the WebNN SDXL-Turbo demo, which runs its scheduler step as a graph).
 * ORT moves data between the host and the GPU only at a session's inputs and outputs, so every piece
 * of per-step arithmetic that would otherwise run in JavaScript runs here instead:
 *
 * - latent-step: classifier-free guidance over the UNet's [B, C, h, w] output, the scheduler step as
 *   a linear combination of sample, noise prediction and noise, and the next UNet input (scaled and
 *   repeated over the batch), in one call.
 * - to-device: the text embeddings, once per image, into a GPU buffer the UNet reads on every step.
 * - to-host: a GPU tensor read back to the host (onnxruntime-node cannot download a GPU tensor itself).
 *
 * One variant per float type the model's UNet and text encoder use at their boundary.
 */
import { GraphBuilder, type Dim } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';

export type HelperFloat = 'float32' | 'float16';

export const HELPER_NAMES = ['latent-step', 'to-device', 'to-host'] as const;
export type HelperName = (typeof HELPER_NAMES)[number];

/** The file a helper variant is served as, under the app's engine/ folder. */
export function helperFileName(name: HelperName, float: HelperFloat): string {
  return `${name}.${float === 'float32' ? 'f32' : 'f16'}.onnx`;
}

const code = (f: HelperFloat) => (f === 'float32' ? DType.FLOAT : DType.FLOAT16);

/** Input `name` of type `float`, as float32 for the body. */
function floatIn(b: GraphBuilder, name: string, float: HelperFloat, dims: Dim[]): string {
  const x = b.input(name, code(float), dims);
  return float === 'float32' ? x : b.op('Cast', [x], { to: DType.FLOAT });
}

function floatOut(b: GraphBuilder, name: string, value: string, float: HelperFloat, dims: Dim[]): void {
  b.output(name, float === 'float32' ? value : b.op('Cast', [value], { to: DType.FLOAT16 }), code(float), dims);
}

/**
 * latent-step. Inputs: noise_pred [batch, C, h, w] (the UNet's output type), guidance [batch, 1, 1, 1]
 * (the weights of the batch items: [1 - g, g] under guidance, [1] without), sample [1, C, h, w],
 * noise (broadcastable to the sample: [1, 1, 1, 1] zeros when the step draws none), coefficients [4]:
 * the scheduler's (sample, prediction, noise) weights and the next step's input scale.
 * Outputs: latents = a·sample + b·ε + c·noise, and next_sample = latents · s repeated to [batch, C, h, w]
 * in the UNet's input type.
 */
function latentStep(float: HelperFloat): Uint8Array {
  const b = new GraphBuilder('latent_step', 0);
  const pred = floatIn(b, 'noise_pred', float, ['batch', 'channels', 'height', 'width']);
  const guidance = b.input('guidance', DType.FLOAT, ['batch', 1, 1, 1]);
  const sample = b.input('sample', DType.FLOAT, [1, 'channels', 'height', 'width']);
  const noise = b.input('noise', DType.FLOAT, ['noise_batch', 'noise_channels', 'noise_height', 'noise_width']);
  const coefficients = b.input('coefficients', DType.FLOAT, [4]);
  const coefficient = (i: number) => b.op('Gather', [coefficients, b.int64([i])], { axis: 0 });
  // uncond·(1 - g) + cond·g is diffusers' uncond + g·(cond - uncond), regrouped into one reduction
  const eps = b.op('ReduceSum', [b.op('Mul', [pred, guidance]), b.int64([0])], { keepdims: 1 });
  const latents = b.op('Add', [
    b.op('Add', [b.op('Mul', [sample, coefficient(0)]), b.op('Mul', [eps, coefficient(1)])]),
    b.op('Mul', [noise, coefficient(2)]),
  ]);
  const next = b.op('Expand', [b.op('Mul', [latents, coefficient(3)]), b.op('Shape', [pred])]);
  b.output('latents', latents, DType.FLOAT, [1, 'channels', 'height', 'width']);
  floatOut(b, 'next_sample', next, float, ['batch', 'channels', 'height', 'width']);
  return b.encode('sd-browser engine helper: guidance + linear scheduler step + next UNet input');
}

/** x · 1: ORT folds no multiplication by one, so the output lands where the session puts its outputs. */
function passThrough(name: string, rank: number, float: HelperFloat, doc: string): Uint8Array {
  const b = new GraphBuilder(name.replace('-', '_'), 0);
  const dims = Array.from({ length: rank }, (_, i) => `d${i}`);
  floatOut(b, 'y', b.op('Mul', [floatIn(b, 'x', float, dims), b.scalar(1)]), float, dims);
  return b.encode(doc);
}

export function buildHelper(name: HelperName, float: HelperFloat): Uint8Array {
  switch (name) {
    case 'latent-step':
      return latentStep(float);
    case 'to-device':
      return passThrough(name, 3, float, 'sd-browser engine helper: text embeddings into a GPU buffer');
    case 'to-host':
      return passThrough(name, 4, float, 'sd-browser engine helper: a GPU tensor read back to the host');
  }
}

/** Every helper variant by file name. */
export function buildHelpers(): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of HELPER_NAMES) for (const float of ['float32', 'float16'] as const) out.set(helperFileName(name, float), buildHelper(name, float));
  return out;
}

/** Writes every variant into `dir` (the app serves public/engine/ as engine/). */
export async function writeHelpers(dir: string): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  await mkdir(dir, { recursive: true });
  for (const [file, bytes] of buildHelpers()) await writeFile(path.join(dir, file), bytes);
}
