/**
 * Operators that onnxruntime-web's WebGPU execution provider runs: the tiny models use only these,
 * so a tiny model that runs in the browser tests says nothing false about op coverage.
 */
export const WEBGPU_OPS: ReadonlySet<string> = new Set([
  'Conv', 'InstanceNormalization', 'LayerNormalization', 'MatMul', 'Gemm', 'Softmax', 'Transpose', 'Reshape',
  'Resize', 'Gather', 'Sin', 'Cos', 'Concat', 'Mul', 'Add', 'Sub', 'Div', 'Sigmoid', 'Erf', 'Slice',
  'AveragePool', 'Cast', 'Shape', 'Unsqueeze', 'Where', 'Expand', 'Tanh', 'Pow', 'Sqrt', 'ReduceMean', 'ReduceSum', 'Split', 'Relu',
]);
