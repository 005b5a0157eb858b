/**
 * onnxruntime-node's WebGPU EP needs a Vulkan driver; on this project's machines that is Chromium's
 * SwiftShader, found only when the process starts with
 * LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
 * (tools/run-tests.ts sets both; `npm run bench -- --node` re-runs itself with them). Tests that need it skip and say why when no adapter is found.
 */
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from './onnx/graph.ts';
import { DType } from './onnx/proto.ts';

async function probe(): Promise<string | null> {
  const b = new GraphBuilder('probe', 0);
  const x = b.input('x', DType.FLOAT, [2]);
  b.output('y', b.op('Add', [x, x]), DType.FLOAT, [2]);
  try {
    const s = await ort.InferenceSession.create(b.encode(), { executionProviders: ['webgpu'], logSeverityLevel: 3 });
    await s.release();
    return null;
  } catch (e) {
    return String(e).slice(0, 200);
  }
}

let cached: Promise<string | null> | null = null;

/** Null when onnxruntime-node's WebGPU EP has an adapter, else why not. */
export function nodeWebgpuUnavailableReason(): Promise<string | null> {
  cached ??= probe();
  return cached;
}
