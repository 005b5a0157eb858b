/**
 * Where requests run in each mode: local, remote, and auto's fallbacks (a model not here, not
 * downloaded, a WASM-only device, and a GPU lost mid-run), with stand-in backends.
 */
import { describe, expect, it } from 'vitest';
import { createRequestRouter, type RouterDeps } from '../../src/api/request-router.ts';
import { errorResponse, successResponse, type GenerationResponse } from '../../src/api/responses.ts';
import type { CatalogueEntry } from '../../src/models/catalogue.ts';

function backend(runtime: string, answer?: (request: unknown) => GenerationResponse) {
  const calls: unknown[] = [];
  const run = async (request: unknown) => {
    calls.push(request);
    return answer ? answer(request) : successResponse(calls.length, 0.1, ['out.png'], { runtime });
  };
  return { calls, text2img: run, img2img: run, inpaint: run, fetch: async (id: number | string) => successResponse(Number(id), 0, [], { runtime }) };
}

const entry = (id: string, bundled: boolean): CatalogueEntry => ({ id, name: id, description: '', bundled, source: { id, baseUrl: 'http://x/', files: [] } });

function setup(overrides: Partial<RouterDeps> = {}, localAnswer?: (r: unknown) => GenerationResponse) {
  const local = backend('local', localAnswer);
  const remote = backend('remote');
  const deviceFailures = new Set<unknown>();
  const router = createRequestRouter({
    mode: 'auto', storedKey: () => 'k', local, remote,
    backend: { backend: 'webgpu', reason: 'adapter', shaderF16: true },
    models: [entry('tiny-sd', true), entry('sd-turbo', false)], defaultModelId: 'tiny-sd', allowWasm: true,
    isDownloaded: async () => false, isDeviceFailure: (r) => deviceFailures.has(r),
    ...overrides,
  });
  return { router, local, remote, deviceFailures };
}

describe('request router', () => {
  it('auto runs a bundled model here', async () => {
    const { router, local, remote } = setup();
    expect((await router.generate('text2img', { prompt: 'a' })).status).toBe('success');
    expect([local.calls.length, remote.calls.length]).toEqual([1, 0]);
  });

  it('auto sends a model that is not here, or not downloaded, to the hosted API and says why', async () => {
    const { router, remote } = setup();
    const r1 = await router.generate('text2img', { prompt: 'a', model_id: 'sdxl' });
    expect(r1).toMatchObject({ meta: { runtime: 'remote', fallback_reason: 'the model sdxl is not available on this device' } });
    const r2 = await router.generate('text2img', { prompt: 'a', model_id: 'sd-turbo' });
    expect(r2).toMatchObject({ meta: { fallback_reason: 'the model sd-turbo is not downloaded on this device' } });
    expect(remote.calls).toHaveLength(2);
  });

  it('auto runs a downloaded catalogue model here', async () => {
    const { router, local } = setup({ isDownloaded: async () => true });
    await router.generate('img2img', { prompt: 'a', model_id: 'sd-turbo' });
    expect(local.calls).toHaveLength(1);
  });

  it('auto retries remotely when the GPU is lost mid-run, and only then', async () => {
    let failure: GenerationResponse | null = null;
    const { router, deviceFailures, remote } = setup({}, () => {
      failure = errorResponse('The generation failed: GPUDevice was lost');
      deviceFailures.add(failure);
      return failure;
    });
    const r = await router.generate('text2img', { prompt: 'a' });
    expect(r).toMatchObject({ status: 'success', meta: { runtime: 'remote' } });
    expect(String((r as { meta: Record<string, unknown> }).meta.fallback_reason)).toMatch(/GPUDevice was lost/);
    expect(remote.calls).toHaveLength(1);
    const ordinary = setup({}, () => errorResponse('The prompt field is required.'));
    expect((await ordinary.router.generate('text2img', {})).status).toBe('error');
    expect(ordinary.remote.calls).toHaveLength(0);
  });

  it('without a key: a GPU failure stays an error, a catalogue model downloads here, an unknown one is refused', async () => {
    const lost = setup({ storedKey: () => '' }, () => errorResponse('lost'));
    expect((await lost.router.generate('text2img', { prompt: 'a' })).status).toBe('error');
    expect(lost.remote.calls).toHaveLength(0);
    const { router, local, remote } = setup({ storedKey: () => '' });
    await router.generate('text2img', { prompt: 'a', model_id: 'sd-turbo' });
    expect(local.calls).toHaveLength(1);
    const refused = await router.generate('text2img', { prompt: 'a', model_id: 'sdxl' });
    expect(refused).toMatchObject({ status: 'error' });
    expect(remote.calls).toHaveLength(0);
  });

  it("auto without a saved key falls back with the request's own key, and fetch(id) asks with that key", async () => {
    const fetched: unknown[] = [];
    const { router, remote } = setup({ storedKey: () => '' });
    const original = remote.fetch;
    remote.fetch = async (id: number | string, options?: { key?: string }) => {
      fetched.push(options);
      return original(id);
    };
    const r = await router.generate('text2img', { prompt: 'a', model_id: 'sdxl', key: 'own-key' });
    expect(r).toMatchObject({ status: 'success', meta: { runtime: 'remote' } });
    expect(remote.calls).toHaveLength(1);
    await router.fetch((r as { id: number }).id);
    expect(fetched).toEqual([{ key: 'own-key' }]);
  });

  it('auto on a WASM-only device goes remote unless WASM is allowed', async () => {
    const wasm = { backend: 'wasm' as const, reason: 'no adapter', shaderF16: false };
    const denied = setup({ backend: wasm, allowWasm: false });
    expect(await denied.router.generate('text2img', { prompt: 'a' })).toMatchObject({ meta: { runtime: 'remote' } });
    const allowed = setup({ backend: wasm, allowWasm: true });
    expect(await allowed.router.generate('text2img', { prompt: 'a' })).toMatchObject({ meta: { runtime: 'local' } });
  });

  it('local and remote modes never cross over; fetch follows where a request ran', async () => {
    const local = setup({ mode: 'local' });
    await local.router.generate('text2img', { prompt: 'a', model_id: 'sdxl' });
    expect(local.remote.calls).toHaveLength(0);
    const remoteOnly = setup({ mode: 'remote', local: null });
    await remoteOnly.router.generate('text2img', { prompt: 'a' });
    expect(remoteOnly.remote.calls).toHaveLength(1);
    const auto = setup();
    const r = await auto.router.generate('text2img', { prompt: 'a', model_id: 'sdxl' });
    expect(await auto.router.fetch((r as { id: number }).id)).toMatchObject({ meta: { runtime: 'remote' } });
    expect(await auto.router.fetch(999)).toMatchObject({ meta: { runtime: 'local' } });
  });
});
