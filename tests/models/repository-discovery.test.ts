/**
 * Adding a model by URL, against the stand-in hub serving replicas of real repositories: the files
 * come from the tree listing (every external-data shard included, graphs under other names taken
 * as <component>/model.onnx), small graphs are read at once for what they fix, a repository that
 * lacks a tokenizer or scheduler names what is missing, and a companion repository supplies them.
 * Without a tree listing (a plain web server), the standard layout and its shards are probed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscoveryError, discoverModel } from '../../src/models/repository-discovery.ts';
import { NO_VAE_ENCODER } from '../../src/models/model-descriptor.ts';
import { buildReplicas } from '../../tools/tiny-models/replicas.ts';
import { startMockHub, type MockHub } from '../support/mock-hub.ts';

let hub: MockHub;
beforeAll(async () => {
  hub = await startMockHub({ repos: await buildReplicas() });
}, 120_000);
afterAll(() => hub.close());

const base = (repo: string) => hub.baseUrl(repo);
const paths = (files: { path: string }[]) => files.map((f) => f.path).sort();

describe('discoverModel', () => {
  it('finds an SDXL export with a three-shard UNet from the tree listing and model_index.json', async () => {
    const found = await discoverModel(base('Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard'), fetch);
    expect(found.family).toBe('stable-diffusion-xl');
    expect(found.limits).toEqual({ modes: { text2img: true, img2img: NO_VAE_ENCODER, inpaint: NO_VAE_ENCODER }, fixedSize: null });
    expect(paths(found.files)).toEqual([
      'model_index.json', 'scheduler/scheduler_config.json',
      'text_encoder/model.onnx', 'text_encoder/model.onnx_data', 'text_encoder_2/model.onnx', 'text_encoder_2/model.onnx_data',
      'tokenizer/tokenizer.json', 'tokenizer/tokenizer_config.json', 'tokenizer_2/tokenizer.json', 'tokenizer_2/tokenizer_config.json',
      'unet/model.onnx', 'unet/model.onnx_data', 'unet/model.onnx_data_1', 'unet/model.onnx_data_2',
      'vae_decoder/model.onnx', 'vae_decoder/model.onnx_data',
    ]);
    for (const f of found.files) expect(f.url).toBe(`${base('Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard')}${f.path}`);
  });

  it('reads a fixed-shape export\'s limits before its download', async () => {
    const found = await discoverModel(base('microsoft/sd-turbo-webnn'), fetch, { companionUrl: base('stabilityai/sd-turbo') });
    expect(found.limits.fixedSize).toEqual({ width: 512, height: 512 });
    const unet = found.files.find((f) => f.path === 'unet/model.onnx');
    expect(unet?.url).toBe(`${base('microsoft/sd-turbo-webnn')}unet/model_layernorm.onnx`);
    expect(paths(found.files)).toContain('safety_checker/model.onnx');
  });

  it('an export without tokenizer and scheduler says so, and takes them from a companion repository', async () => {
    const error = await discoverModel(base('schmuell/sd-turbo-ort-web'), fetch).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryError);
    expect((error as Error).message).toMatch(/no tokenizer\/ .* and no scheduler\/scheduler_config\.json\. Name a companion repository/);
    const found = await discoverModel(base('schmuell/sd-turbo-ort-web'), fetch, { companionUrl: base('stabilityai/sd-turbo') });
    const byPath = Object.fromEntries(found.files.map((f) => [f.path, f.url]));
    expect(byPath['tokenizer/vocab.json']).toBe(`${base('stabilityai/sd-turbo')}tokenizer/vocab.json`);
    expect(byPath['scheduler/scheduler_config.json']).toBe(`${base('stabilityai/sd-turbo')}scheduler/scheduler_config.json`);
    // a diffusers companion keeps its VAE config under vae/
    expect(byPath['vae_decoder/config.json']).toBe(`${base('stabilityai/sd-turbo')}vae/config.json`);
    expect(byPath['unet/model.onnx']).toBe(`${base('schmuell/sd-turbo-ort-web')}unet/model.onnx`);
    expect(found.limits.modes).toEqual({ text2img: true, img2img: true, inpaint: true });
  });

  it('takes a component folder\'s one graph under another name, with the weights it names', async () => {
    const found = await discoverModel(base('d0gr/sdxl-lightning-onnx-webgpu-int4'), fetch, { companionUrl: base('d0gr/sdxl-lightning-onnx-webgpu') }).catch((e: unknown) => e);
    // the int4 repository holds a UNet alone: text encoders and VAE are not a tokenizer's or scheduler's to lend
    expect((found as Error).message).toMatch(/no text_encoder\/\*\.onnx, vae_decoder\/\*\.onnx/);
  });

  it('without a tree listing, probes the standard layout and the shards after model.onnx_data', async () => {
    const repo = 'Cyronius/sdxl-lightning-4step-onnx-web-fp16-3shard';
    // the same files, but the listing API answers 404 (any web server that is not the hub)
    const plain: typeof fetch = async (input, init) => (String(input).includes('/api/models/') ? new Response('no', { status: 404 }) : fetch(input, init));
    const found = await discoverModel(base(repo), plain);
    expect(paths(found.files).filter((p) => p.startsWith('unet/'))).toEqual(['unet/model.onnx', 'unet/model.onnx_data', 'unet/model.onnx_data_1', 'unet/model.onnx_data_2']);
  });

  it('a URL that is no model says what is missing', async () => {
    await expect(discoverModel(base('test/big'), fetch)).rejects.toThrow(/not a diffusers-ONNX model/);
  });
});
