// The ESRGAN-slim conversion (tools/esrgan.ts): each converted ONNX graph, run by onnxruntime-node,
// against the package's original TensorFlow.js network run by tfjs's pure-JS CPU backend on the same
// input, in the [0, 1] units our graph speaks (tfjs gets the pixels in the package's inputRange).
import * as tf from '@tensorflow/tfjs';
import * as ortNode from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModelSession, type OrtModule } from '../../src/engine/runtime.ts';
import { convertEsrgan, ESRGAN_SCALES, loadEsrgan } from '../../tools/esrgan.ts';

const ort = ortNode as unknown as OrtModule;

/** Deterministic values in [0, 1) (a 32-bit LCG): the same input on every run. */
function randomImage(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

async function runTfjs(scale: number, nchw: Float32Array, h: number, w: number): Promise<{ data: Float32Array; dims: number[] }> {
  const { definition, model } = await loadEsrgan(scale);
  const weightData = model.weightData.buffer.slice(model.weightData.byteOffset, model.weightData.byteOffset + model.weightData.byteLength) as ArrayBuffer;
  // tfjs cannot fetch file:// under Node: hand it the files' contents
  const net = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: model.json.modelTopology as unknown as tf.io.ModelJSON['modelTopology'],
      weightSpecs: model.json.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
      weightData,
    }),
  );
  const range = definition.inputRange[1];
  const nhwc = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) nhwc[i * 3 + c] = nchw[c * h * w + i] * range;
  const out = tf.tidy(() => {
    const y = net.predict(tf.tensor4d(nhwc, [1, h, w, 3])) as tf.Tensor;
    // upscalerjs clips to its outputRange; ours is the same clip in [0, 1] units
    return y.div(definition.outputRange[1]).clipByValue(0, 1);
  });
  const [, oh, ow] = out.shape;
  const data = (await out.data()) as Float32Array;
  out.dispose();
  net.dispose();
  const planar = new Float32Array(3 * oh * ow);
  for (let c = 0; c < 3; c++) for (let i = 0; i < oh * ow; i++) planar[c * oh * ow + i] = data[i * 3 + c];
  return { data: planar, dims: [1, 3, oh, ow] };
}

describe('ESRGAN-slim conversion (tfjs layers -> ONNX)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  for (const scale of ESRGAN_SCALES) {
    for (const [h, w] of [
      [24, 20],
      [17, 31],
    ] as const) {
      it(`x${scale} on ${w}x${h}: ONNX equals tfjs within 1e-4, ${scale}x the size`, async () => {
        const input = randomImage(3 * h * w, 1000 * scale + h);
        const session = await createModelSession(`esrgan x${scale}`, await convertEsrgan(scale), { ort, backend: 'cpu' });
        const out = (await session.run({ image: { data: input.slice(), dims: [1, 3, h, w] } })).upscaled;
        await session.release();
        const ref = await runTfjs(scale, input, h, w);
        expect(out.dims).toEqual([1, 3, scale * h, scale * w]);
        expect(ref.dims).toEqual(out.dims);
        let maxDiff = 0;
        let min = Infinity;
        let max = -Infinity;
        for (let i = 0; i < ref.data.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(out.data[i] - ref.data[i]));
          min = Math.min(min, out.data[i]);
          max = Math.max(max, out.data[i]);
        }
        console.log(`esrgan x${scale} ${w}x${h}: max |onnx - tfjs| = ${maxDiff.toExponential(2)}`);
        expect(maxDiff).toBeLessThanOrEqual(1e-4);
        expect(min).toBeGreaterThanOrEqual(0);
        expect(max).toBeLessThanOrEqual(1);
        // a real network on random pixels uses the range; all-zero or all-one would hide a broken graph
        expect(max - min).toBeGreaterThan(0.5);
      });
    }
  }
});
