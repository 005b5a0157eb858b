/**
 * Where requests run in each mode: local, remote, and auto's fallbacks (a model not here, not
 * downloaded, a WASM-only device, and a GPU lost mid-run), with stand-in backends; and the
 * generic call(name) over the endpoint table, with and without a local handler.
 */
import { describe, expect, it } from 'vitest';
import { createRequestRouter, withFallbackReason, type RouterDeps } from '../../src/api/request-router.ts';
import { errorResponse, successResponse, type CallResponse, type GenerationResponse } from '../../src/api/responses.ts';
import type { EndpointName, LocalHandlers } from '../../src/api/endpoints.ts';
import type { CatalogueEntry } from '../../src/models/catalogue.ts';

/** What the stand-in hosted API answers per call: the generation shape, a list, or a record without meta. */
function hostedAnswer(name: EndpointName, n: number): CallResponse {
  if (name === 'model_list' || name === 'finetune_list') return [{ model_id: 'remote-model' }];
  if (name === 'base64_crop' || name === 'uncensored_chat') return { status: 'success', id: n, link: 'https://cdn.test/x.png' };
  if (name === 'delete_image') return errorResponse('Invalid API key');
  return successResponse(n, 0.1, ['out.png'], { runtime: 'remote' });
}

function backend(runtime: string, answer?: (request: unknown) => GenerationResponse) {
  const calls: unknown[] = [];
  const named: { name: EndpointName; request: Record<string, unknown> }[] = [];
  const run = async (request: unknown) => {
    calls.push(request);
    return answer ? answer(request) : successResponse(calls.length, 0.1, ['out.png'], { runtime });
  };
  const call = async (name: EndpointName, request: Record<string, unknown>) => {
    named.push({ name, request });
    return hostedAnswer(name, 500 + named.length);
  };
  return {
    calls, named, call, text2img: run, img2img: run, inpaint: run,
    fetch: async (id: number | string, _options?: { key?: string }) => successResponse(Number(id), 0, [], { runtime }),
  };
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

  it('auto sends a LoRA request to the hosted API (LoRA does not run here); without a key the local refusal answers', async () => {
    const handled: string[] = [];
    const { router, local, remote } = setup({ localHandlers: { dreambooth: async () => (handled.push('dreambooth'), successResponse(1, 0, [], {})) } });
    const r = await router.generate('text2img', { prompt: 'a', lora_model: 'add_detail', lora_strength: 0.7 });
    expect(r).toMatchObject({ meta: { runtime: 'remote', fallback_reason: 'LoRA weights do not run locally yet' } });
    const v4 = await router.call('dreambooth', { prompt: 'a', lora_model: 'add_detail' });
    expect(v4).toMatchObject({ meta: { fallback_reason: 'LoRA weights do not run locally yet' } });
    expect([local.calls.length, handled.length, remote.calls.length, remote.named.map((n) => n.name)]).toEqual([0, 0, 1, ['dreambooth']]);
    // Without a key it stays here, where the local client refuses lora_model by field (local-client.test.ts).
    const keyless = setup({ storedKey: () => '' });
    await keyless.router.generate('text2img', { prompt: 'a', lora_model: 'add_detail' });
    expect([keyless.local.calls.length, keyless.remote.calls.length]).toEqual([1, 0]);
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

describe('request router: call(name) over the endpoint table', () => {
  function handlers(answer?: (name: string, request: Record<string, unknown>) => unknown) {
    const ran: { name: string; request: Record<string, unknown> }[] = [];
    const make = (name: EndpointName) => async (request: Record<string, unknown>) => {
      ran.push({ name, request });
      return answer ? answer(name, request) : { status: 'success', id: 1, output: 'local.png', meta: { runtime: 'local' } };
    };
    const map: LocalHandlers = {
      super_resolution: make('super_resolution'), base64_crop: make('base64_crop'), model_list: make('model_list'),
      dreambooth: make('dreambooth'), outpaint: make('outpaint'),
    };
    return { map, ran };
  }

  it('local mode runs a call with a handler here, and refuses one without, saying how to run it', async () => {
    const { map, ran } = handlers();
    const { router, remote } = setup({ mode: 'local', localHandlers: map });
    expect(await router.call('super_resolution', { url: 'https://x/a.png', scale: 2 })).toMatchObject({ meta: { runtime: 'local' } });
    expect(ran).toEqual([{ name: 'super_resolution', request: { url: 'https://x/a.png', scale: 2 } }]);
    expect(await router.call('text2video', { prompt: 'waves' })).toEqual({
      status: 'error', message: 'text2video is not available locally; switch to remote or auto mode with an API key to run it on the hosted API.',
    });
    expect(remote.named).toEqual([]);
  });

  it('remote mode sends every call to the hosted API, unmarked', async () => {
    const { router, remote } = setup({ mode: 'remote', local: null });
    const r = await router.call('super_resolution', { url: 'u' });
    expect(r).toMatchObject({ status: 'success', meta: { runtime: 'remote' } });
    expect((r as { meta: Record<string, unknown> }).meta).not.toHaveProperty('fallback_reason');
    expect(await router.call('model_list')).toEqual([{ model_id: 'remote-model' }]);
    expect(remote.named.map((c) => c.name)).toEqual(['super_resolution', 'model_list']);
  });

  it('auto runs a call with a local handler here', async () => {
    const { map, ran } = handlers();
    const { router, remote } = setup({ localHandlers: map });
    await router.call('base64_crop', { image: 'data:,', crop: 'true' });
    await router.call('model_list', {});
    // A community-model call whose model is here runs here too.
    await router.call('dreambooth', { prompt: 'a', model_id: 'tiny-sd' });
    expect(ran.map((r) => r.name)).toEqual(['base64_crop', 'model_list', 'dreambooth']);
    expect(remote.named).toEqual([]);
  });

  it("auto sends a model-based call to the hosted API for text2img's reasons to leave, and says why", async () => {
    const { map, ran } = handlers();
    const { router, remote } = setup({ localHandlers: map });
    const r = await router.call('dreambooth', { prompt: 'a', model_id: 'midjourney' });
    expect(r).toMatchObject({ status: 'success', meta: { runtime: 'remote', fallback_reason: 'the model midjourney is not available on this device' } });
    const wasm = setup({ localHandlers: map, backend: { backend: 'wasm', reason: 'no adapter', shaderF16: false }, allowWasm: false });
    expect(await wasm.router.call('outpaint', { image: 'x', prompt: 'p' })).toMatchObject({ meta: { fallback_reason: 'no local GPU backend: no adapter' } });
    // Not a model-based call: no model to be missing, so it stays here.
    expect(await wasm.router.call('base64_crop', { image: 'x' })).toMatchObject({ meta: { runtime: 'local' } });
    expect(ran.map((x) => x.name)).toEqual(['base64_crop']);
    expect([...remote.named, ...wasm.remote.named].map((c) => c.name)).toEqual(['dreambooth', 'outpaint']);
  });

  it('auto sends a call without a local handler to the hosted API with meta.fallback_reason, adding meta where it had none', async () => {
    const { router, remote } = setup({ localHandlers: {} });
    expect(await router.call('text2video', { prompt: 'waves' })).toMatchObject({
      status: 'success', meta: { runtime: 'remote', fallback_reason: 'text2video has no local implementation' },
    });
    expect(await router.call('uncensored_chat', { messages: [] })).toEqual({
      status: 'success', id: 502, link: 'https://cdn.test/x.png', meta: { fallback_reason: 'uncensored_chat has no local implementation' },
    });
    // A list has nowhere to say it, and an error keeps the API's error shape.
    expect(await router.call('finetune_list')).toEqual([{ model_id: 'remote-model' }]);
    expect(await router.call('delete_image', { request_id: 1 })).toEqual({ status: 'error', message: 'Invalid API key' });
    expect(remote.named.map((c) => c.name)).toEqual(['text2video', 'uncensored_chat', 'finetune_list', 'delete_image']);
  });

  it("auto without a key refuses a call it cannot run here, and uses the request's own key when it has one", async () => {
    const { router, remote } = setup({ storedKey: () => '', localHandlers: {} });
    expect(await router.call('text2video', { prompt: 'waves' })).toEqual({
      status: 'error', message: 'text2video is not available locally and no API key is set for the hosted API.',
    });
    expect(remote.named).toEqual([]);
    const own = await router.call('text2video', { prompt: 'waves', key: 'own-key' });
    expect(own).toMatchObject({ status: 'success', meta: { fallback_reason: 'text2video has no local implementation' } });
    expect(remote.named[0]!.request).toMatchObject({ key: 'own-key' });
    const { map } = handlers();
    const noKey = setup({ storedKey: () => '', localHandlers: map });
    expect(await noKey.router.call('dreambooth', { prompt: 'a', model_id: 'midjourney' })).toMatchObject({
      status: 'error', message: 'This request cannot run here (the model midjourney is not available on this device) and no API key is set for the hosted API.',
    });
  });

  it('auto retries remotely when a local handler reports a lost GPU', async () => {
    const lost = errorResponse('The generation failed: GPUDevice was lost');
    const { map } = handlers(() => lost);
    const { router, remote, deviceFailures } = setup({ localHandlers: map });
    deviceFailures.add(lost);
    const r = await router.call('outpaint', { image: 'x', prompt: 'p' });
    expect(r).toMatchObject({ status: 'success', meta: { fallback_reason: 'the local run failed: The generation failed: GPUDevice was lost' } });
    expect(remote.named.map((c) => c.name)).toEqual(['outpaint']);
  });

  it('routes text2img, img2img, inpaint and fetch as their own methods do, and refuses unknown names and bad requests', async () => {
    const { router, local, remote } = setup({ localHandlers: {} });
    expect(await router.call('text2img', { prompt: 'a' })).toMatchObject({ meta: { runtime: 'local' } });
    expect(await router.call('inpaint', { prompt: 'a', model_id: 'sdxl' })).toMatchObject({ meta: { runtime: 'remote', fallback_reason: 'the model sdxl is not available on this device' } });
    expect([local.calls.length, remote.calls.length]).toEqual([1, 1]);
    expect(await router.call('fetch', { id: 7 })).toMatchObject({ id: 7, meta: { runtime: 'local' } });
    expect(await router.call('fetch', {})).toEqual({ status: 'error', message: { id: ['A request id is needed to fetch a result.'] } });
    expect(await router.call('nope', {})).toMatchObject({ status: 'error', message: expect.stringMatching(/^There is no hosted call named "nope"/) });
    expect(await router.call('outpaint', 'not an object')).toEqual({ status: 'error', message: 'The request must be a JSON object.' });
    expect(remote.named).toEqual([]);
  });

  it('withFallbackReason marks objects only', () => {
    expect(withFallbackReason({ status: 'success', meta: { a: 1 } }, 'r')).toEqual({ status: 'success', meta: { a: 1, fallback_reason: 'r' } });
    expect(withFallbackReason({ status: 'success' }, 'r')).toEqual({ status: 'success', meta: { fallback_reason: 'r' } });
    expect(withFallbackReason([1], 'r')).toEqual([1]);
    expect(withFallbackReason(errorResponse('x'), 'r')).toEqual({ status: 'error', message: 'x' });
  });
});
