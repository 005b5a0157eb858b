/**
 * The onnx.ModelProto classes from the `onnx-proto` package (protobufjs-generated, ONNX 1.10 schema,
 * which already has every field these tiny models use).
 *
 * The package is CommonJS with `module.exports = $root`, which Node's ESM loader cannot expose as a
 * named export, and its .d.ts declares an ES namespace without a default export; loading it through
 * createRequire works the same under tsx, vitest and tsc.
 */
import { createRequire } from 'node:module';

type OnnxProtoModule = typeof import('onnx-proto');
/** The message interfaces (onnx.INodeProto, ...) for type positions; `onnx` below is the runtime value. */
export type { onnx as OnnxTypes } from 'onnx-proto';

const require = createRequire(import.meta.url);
export const onnx: OnnxProtoModule['onnx'] = (require('onnx-proto') as OnnxProtoModule).onnx;

/** TensorProto.DataType values used here. */
export const DType = {
  FLOAT: 1,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
} as const;
export type DTypeCode = (typeof DType)[keyof typeof DType];

/** ONNX IR version 8 is the first to carry opset 17. */
export const IR_VERSION = 8;
export const OPSET = 17;
