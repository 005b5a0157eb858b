/**
 * SDXL conditioning against diffusers' own StableDiffusionXLPipeline: the numbers in
 * fixtures/sdxl-conditioning.json were printed by tools/reference/sdxl-conditioning.py, which ran
 * diffusers' encode_prompt, _get_add_time_ids and __call__'s guidance batching over fake tokenizers
 * and text encoders. Here the same fakes feed our encodeStableDiffusionXLPrompt, and the UNet inputs
 * must come out equal: penultimate hidden states concatenated per token, text_encoder_2's
 * text_embeds as the pooled embedding, (h, w, 0, 0, h, w) time ids, negatives first, zeros for an
 * absent negative prompt under force_zeros_for_empty_prompt.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { usesGuidance } from '../../src/engine/pipelines/denoising-loop.ts';
import type { TextEncoder } from '../../src/engine/pipelines/prompt-encoding.ts';
import { encodeStableDiffusionXLPrompt, penultimateHiddenState } from '../../src/engine/pipelines/stable-diffusion-xl.ts';
import type { HostTensor } from '../../src/engine/runtime.ts';
import type { ClipTokenizer } from '../../src/engine/tokenizer.ts';

interface Tensor { dims: number[]; data: number[] }
interface EncoderCall { encoder: 1 | 2; input_ids: number[][]; hidden_states: Tensor[]; last_hidden_state: Tensor; text_embeds?: Tensor }
interface Case {
  name: string;
  inputs: { prompt: string; negative_prompt: string | null; guidance_scale: number; force_zeros_for_empty_prompt: boolean; width: number; height: number; crops_coords_top_left?: number[]; original_size?: number[] };
  encoder_calls: EncoderCall[];
  unet_inputs: { encoder_hidden_states: Tensor; text_embeds: Tensor; time_ids: Tensor };
}
interface Reference {
  sizes: { sequence: number };
  tokens: { start: number; end: number; tokenizer_pad: number; tokenizer_2_pad: number; words: Record<string, number> };
  cases: Case[];
}

const reference = JSON.parse(readFileSync(new URL('./fixtures/sdxl-conditioning.json', import.meta.url), 'utf8')) as Reference;

/** The reference's fake tokenizer: start, one id per word, end, padding to the sequence length. */
function tokenizer(pad: number): ClipTokenizer {
  const t = reference.tokens;
  const encodeDetailed = (text: string) => {
    const words = text.split(/\s+/).filter(Boolean).map((w) => t.words[w]);
    const ids = [t.start, ...words, t.end];
    while (ids.length < reference.sizes.sequence) ids.push(pad);
    return { ids: Int32Array.from(ids), truncated: false };
  };
  return { encodeDetailed, encode: (text: string) => encodeDetailed(text).ids } as unknown as ClipTokenizer;
}

const tensor = (t: Tensor): HostTensor => ({ data: Float32Array.from(t.data), dims: [...t.dims] });

/** The reference's fake encoder: each row's outputs are what diffusers' fake returned for those ids. */
function encoder(c: Case, which: 1 | 2, pad: number): TextEncoder {
  const calls = c.encoder_calls.filter((e) => e.encoder === which);
  const rowOf = (ids: Int32Array) => {
    const call = calls.find((e) => e.input_ids[0].every((v, i) => v === ids[i]));
    if (!call) throw new Error(`${c.name}: no reference call of encoder ${which} for ids ${Array.from(ids)}`);
    const outs: Record<string, HostTensor> = { last_hidden_state: tensor(call.last_hidden_state) };
    call.hidden_states.forEach((h, i) => (outs[`hidden_states.${i}`] = tensor(h)));
    if (call.text_embeds) outs.text_embeds = tensor(call.text_embeds);
    return outs;
  };
  return {
    tokenizer: tokenizer(pad),
    firstOutput: which === 1 ? 'last_hidden_state' : 'text_embeds',
    async run(ids) {
      const rows = ids.map(rowOf);
      const out: Record<string, HostTensor> = {};
      for (const name of Object.keys(rows[0])) {
        const parts = rows.map((r) => r[name]);
        const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
        let off = 0;
        for (const p of parts) {
          data.set(p.data, off);
          off += p.data.length;
        }
        out[name] = { data, dims: [rows.length, ...parts[0].dims.slice(1)] };
      }
      return out;
    },
  };
}

function expectClose(actual: HostTensor, expected: Tensor, what: string): void {
  expect(actual.dims, what).toEqual(expected.dims);
  const a = actual.data as Float32Array;
  for (let i = 0; i < expected.data.length; i++) expect(Math.abs(a[i] - expected.data[i]), `${what}[${i}]`).toBeLessThan(1e-6);
}

// Our API has no crop or original-size fields: those cases check diffusers' formula for inputs the
// app never sends. And the API reads "" as "no negative prompt" (every optional field's blank means
// not given), so a "" negative prompt is diffusers' None here, checked against that case below.
const comparable = reference.cases.filter((c) => !c.inputs.crops_coords_top_left?.some((v) => v !== 0) && !c.inputs.original_size && c.inputs.negative_prompt !== '');

describe('SDXL conditioning equals diffusers StableDiffusionXLPipeline', () => {
  it('has the reference cases', () => {
    expect(comparable.length).toBeGreaterThanOrEqual(7);
  });

  it.each(comparable.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const t = reference.tokens;
    const result = await encodeStableDiffusionXLPrompt(
      { first: encoder(c, 1, t.tokenizer_pad), second: encoder(c, 2, t.tokenizer_2_pad), forceZerosForEmptyPrompt: c.inputs.force_zeros_for_empty_prompt },
      { prompt: c.inputs.prompt, negativePrompt: c.inputs.negative_prompt ?? '', guided: usesGuidance(c.inputs.guidance_scale), width: c.inputs.width, height: c.inputs.height },
    );
    expect(Object.keys(result.conditioning).sort()).toEqual(['encoder_hidden_states', 'text_embeds', 'time_ids']);
    expectClose(result.conditioning.encoder_hidden_states, c.unet_inputs.encoder_hidden_states, 'encoder_hidden_states');
    expectClose(result.conditioning.text_embeds, c.unet_inputs.text_embeds, 'text_embeds');
    expectClose(result.conditioning.time_ids, c.unet_inputs.time_ids, 'time_ids');
  });

  it('a "" negative prompt is the API\'s "none": zeros under force_zeros, as diffusers does for None', async () => {
    const none = reference.cases.find((c) => c.inputs.negative_prompt === null && c.inputs.force_zeros_for_empty_prompt && c.inputs.guidance_scale > 1 && c.inputs.width === 64)!;
    const t = reference.tokens;
    const result = await encodeStableDiffusionXLPrompt(
      { first: encoder(none, 1, t.tokenizer_pad), second: encoder(none, 2, t.tokenizer_2_pad), forceZerosForEmptyPrompt: true },
      { prompt: none.inputs.prompt, negativePrompt: '', guided: true, width: 64, height: 64 },
    );
    expectClose(result.conditioning.encoder_hidden_states, none.unet_inputs.encoder_hidden_states, 'encoder_hidden_states');
  });
});

describe('penultimateHiddenState', () => {
  const t = (v: number): HostTensor => ({ data: Float32Array.of(v), dims: [1, 1, 1] });
  it('takes hidden_states[-2] of the full set, and the one output a pruned export keeps', () => {
    expect(penultimateHiddenState({ 'hidden_states.0': t(0), 'hidden_states.1': t(1), 'hidden_states.2': t(2), last_hidden_state: t(9) }).data[0]).toBe(1);
    expect(penultimateHiddenState({ 'hidden_states.10': t(10), 'hidden_states.11': t(11), 'hidden_states.12': t(12), 'hidden_states.2': t(2) }).data[0]).toBe(11);
    expect(penultimateHiddenState({ 'hidden_states.11': t(11) }).data[0]).toBe(11);
    expect(() => penultimateHiddenState({ last_hidden_state: t(9) })).toThrow(/hidden states/);
  });
});
