import * as ortNode from 'onnxruntime-node';
import type * as OrtWeb from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { markConstant, ModelSession, type HostTensor, type OrtModule } from '../../src/engine/runtime.ts';
import { diffusionModels } from '../../src/engine/session-models.ts';

const ort = ortNode as unknown as OrtModule;

/** An fp16 UNet's session as ORT describes it, recording every feed it is run with. */
function fakeUNet(batch: number | string) {
  const fed: Record<string, OrtWeb.Tensor>[] = [];
  const meta = (name: string, shape: (number | string)[]) => ({ name, isTensor: true as const, type: 'float16' as const, shape });
  const session = {
    inputNames: ['sample', 'timestep', 'encoder_hidden_states'],
    outputNames: ['out_sample'],
    inputMetadata: [meta('sample', [batch, 4, 2, 2]), meta('timestep', [1]), meta('encoder_hidden_states', [batch, 3, 8])],
    outputMetadata: [meta('out_sample', [batch, 4, 2, 2])],
    async run(feeds: Record<string, OrtWeb.Tensor>) {
      fed.push(feeds);
      const n = feeds.sample.dims[0];
      return { out_sample: new ortNode.Tensor('float16', new Uint16Array(n * 16), [n, 4, 2, 2]) };
    },
    async release() {},
  } as unknown as OrtWeb.InferenceSession;
  return { session: new ModelSession('unet', ort, session), fed };
}

const hidden = (batch: number): HostTensor => ({ data: Float32Array.from({ length: batch * 24 }, (_, i) => i / 7), dims: [batch, 3, 8] });
const sample = (batch: number): HostTensor => ({ data: new Float32Array(batch * 16).fill(0.5), dims: [batch, 4, 2, 2] });

describe('float16 inputs: the prompt conditioning is converted once per request', () => {
  it('a constant tensor is converted on its first run and fed as the same tensor after; the per-step sample is converted every run', async () => {
    const { session, fed } = fakeUNet('batch');
    const conditioning = markConstant({ encoder_hidden_states: hidden(2) });
    for (let step = 0; step < 3; step++) await session.run({ sample: sample(2), timestep: { data: Float32Array.of(999), dims: [1] }, ...conditioning });
    // 1 for the conditioning, 3 samples and 3 timesteps
    expect(session.halfConversions).toBe(7);
    expect(fed[1].encoder_hidden_states).toBe(fed[0].encoder_hidden_states);
    expect(fed[2].sample).not.toBe(fed[1].sample);
  });

  it('a tensor never marked constant is converted on every run', async () => {
    const { session, fed } = fakeUNet('batch');
    const conditioning = { encoder_hidden_states: hidden(1) };
    for (let step = 0; step < 2; step++) await session.run({ sample: sample(1), timestep: { data: Float32Array.of(1), dims: [1] }, ...conditioning });
    expect(session.halfConversions).toBe(6);
    expect(fed[1].encoder_hidden_states).not.toBe(fed[0].encoder_hidden_states);
  });

  it('on a UNet fixed to batch 1, guidance splits the conditioning into the same two constant halves every step', async () => {
    const { session, fed } = fakeUNet(1);
    const models = diffusionModels({
      unet: session, vaeDecoder: session, scalingFactor: 1, latentChannels: 4, vaeScaleFactor: 8, unetInChannels: 4, naive: false, device: null, modelId: 'fake',
    });
    const conditioning = markConstant({ encoder_hidden_states: hidden(2) });
    for (let step = 0; step < 4; step++) await models.predictNoise(sample(2), 999 - step, conditioning);
    expect(fed).toHaveLength(8);
    // the uncond half and the cond half, once each
    const halves = new Set(fed.map((f) => f.encoder_hidden_states));
    expect(halves.size).toBe(2);
    expect([...(fed[0].encoder_hidden_states.data as Uint16Array)]).not.toEqual([...(fed[1].encoder_hidden_states.data as Uint16Array)]);
    expect(fed[2].encoder_hidden_states).toBe(fed[0].encoder_hidden_states);
    expect(fed[3].encoder_hidden_states).toBe(fed[1].encoder_hidden_states);
  });
});
