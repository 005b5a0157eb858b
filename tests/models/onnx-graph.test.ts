/** What a graph declares, read from ONNX bytes before a session exists, and the text-length overrides made from it. */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxParseError, readGraphInfo, readGraphInputs, textLengthOverrides } from '../../src/models/onnx-graph.ts';
import { TinyModelFactory } from '../../tools/tiny-models/sets.ts';

let files: Map<string, Uint8Array>;
beforeAll(() => {
  files = new Map(new TinyModelFactory().setFiles('tiny-sd').map((f) => [f.path, f.bytes]));
});


describe('readGraphInfo', () => {
  it('reads the names, element types and dimensions ORT reports, for inputs and outputs, skipping the weights', async () => {
    for (const set of ['tiny-sd', 'tiny-sd-fp16io'] as const) {
      const files = new Map(new TinyModelFactory().setFiles(set).map((f) => [f.path, f.bytes]));
      for (const path of ['unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx']) {
        const bytes = files.get(path)!;
        const session = await ort.InferenceSession.create(bytes);
        const described = (names: readonly string[], meta: readonly ort.InferenceSession.ValueMetadata[]) =>
          names.map((name, i) => {
            const m = meta[i];
            return { name, type: m.isTensor ? m.type : '', dims: m.isTensor ? [...m.shape] : [] };
          });
        const info = readGraphInfo(bytes);
        expect(info.inputs, `${set} ${path}`).toEqual(described(session.inputNames, session.inputMetadata));
        expect(info.outputs, `${set} ${path}`).toEqual(described(session.outputNames, session.outputMetadata));
        expect(info.externalData).toEqual([]);
        expect(info.domains).toEqual(['']);
        expect(info.opTypes.length).toBeGreaterThan(3);
        await session.release();
      }
    }
  });

  it('fixes the token sequence of the text encoder and the UNet, and nothing else', () => {
    const unet = readGraphInputs(files.get('unet/model.onnx')!);
    expect(textLengthOverrides(unet, 77)).toEqual({ sequence: 77 });
    expect(textLengthOverrides(readGraphInputs(files.get('vae_decoder/model.onnx')!), 77)).toEqual({});
  });

  it('refuses bytes that are not a model rather than inventing inputs', () => {
    expect(() => readGraphInputs(new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0x0f]))).toThrow(OnnxParseError);
    // Empty or zeroed files (never written, or wiped) have no graph: they are not a model either.
    expect(() => readGraphInputs(new Uint8Array(0))).toThrow(/no graph/);
    expect(() => readGraphInputs(new Uint8Array(64))).toThrow(/field number 0/);
    expect(() => readGraphInputs(new Uint8Array(64).fill(0x0e))).toThrow(/unsupported wire type 6/);
  });
});
