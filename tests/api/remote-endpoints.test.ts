/**
 * RemoteClient.call over the whole endpoint table against the mock hosted API: every call answers
 * in its own shape, every call that queues work is polled with its own fetch rule (v3 fetch by id,
 * v4 request_id in the body, the v6 families' fetch paths, training's status, chat's fetch_result),
 * the key travels only in bodies, and the non-generation answers pass through with keys stripped.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RemoteClient, type RemoteClientOptions } from '../../src/api/remote-client.ts';
import { byName, ENDPOINT_GROUPS, ENDPOINTS, fetchRequest, type EndpointSpec } from '../../src/api/endpoints.ts';
import { startMockHostedApi, type MockHostedApi } from '../support/mock-hosted-api.ts';

const KEY = 'test-key-endpoints';

let api: MockHostedApi;
/** Its processing answers name a fetch_result on another origin, so the client must use each call's own rule. */
let foreign: MockHostedApi;
beforeAll(async () => {
  api = await startMockHostedApi({ key: KEY });
  foreign = await startMockHostedApi({ key: KEY, fetchResultOrigin: 'http://elsewhere.invalid' });
});
afterAll(() => Promise.all([api.close(), foreign.close()]));
afterEach(() => {
  api.requests.length = 0;
  foreign.requests.length = 0;
});

interface Sent {
  url: string;
  body: Record<string, unknown>;
  /** The answer's text, as it came over the wire. */
  answer: string;
}

function harness(server: MockHostedApi = api, options: Partial<RemoteClientOptions> = {}) {
  const sent: Sent[] = [];
  const sleeps: number[] = [];
  const spyFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    sent.push({ url: String(input), body: JSON.parse(String(init?.body)) as Record<string, unknown>, answer: await response.clone().text() });
    return response;
  };
  const client = new RemoteClient({
    endpoint: server.url, key: KEY, fetch: spyFetch, timeoutMs: 5_000, isOnline: () => true,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options,
  });
  return { client, sent, sleeps };
}

/** A request each call accepts (the mock checks only v3 images; the rest is echoed). */
function requestFor(entry: EndpointSpec, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const r: Record<string, unknown> = { prompt: `a ${entry.name} request`, width: 64, height: 64 };
  if (entry.fields.includes('init_image')) r.init_image = `${api.url}/output/64x64/1-0.png`;
  if (entry.fields.includes('mask_image')) r.mask_image = `${api.url}/output/64x64/2-0.png`;
  if (entry.fields.includes('messages')) r.messages = [{ role: 'user', content: 'hello' }];
  return { ...r, ...extra };
}

/** Whether an answer is the success of its call's response kind. */
function expectSuccess(entry: EndpointSpec, answer: unknown): void {
  const label = `${entry.name}: ${JSON.stringify(answer)}`;
  if (entry.response === 'list') {
    expect(Array.isArray(answer), label).toBe(true);
    return;
  }
  const r = answer as Record<string, unknown>;
  if (entry.response === 'system-load') {
    expect(r.status, label).toBe('ok');
    return;
  }
  expect(r.status, label).toBe('success');
  if (entry.response === 'images') {
    expect(Array.isArray(r.output), label).toBe(true);
    expect((r.meta as Record<string, unknown>).runtime, label).toBe('remote');
  }
  if (entry.response === 'image') expect(typeof r.output, label).toBe('string');
}

const queued = ENDPOINTS.filter((e) => e.fetch !== null);
const readers = ENDPOINTS.filter((e) => e.fetch === null);

describe('RemoteClient.call over the endpoint table', () => {
  it('covers every group with a call that queues work', () => {
    expect(new Set(queued.map((e) => e.group))).toEqual(new Set(ENDPOINT_GROUPS));
  });

  it.each(queued.map((e) => [e.name, e] as const))('%s answers its success at once, POSTed to its own path', async (_name, entry) => {
    const { client, sent } = harness();
    const answer = await client.call(entry.name, requestFor(entry));
    expectSuccess(entry, answer);
    expect(sent.map((s) => s.url)).toEqual([`${api.url}${entry.path}`]);
    expect(sent[0]!.body).toMatchObject({ ...requestFor(entry), key: KEY });
  });

  it.each(queued.filter((e) => e.fetch !== 'fetch_result').map((e) => [e.name, e.group, e] as const))(
    '%s (%s) waits out a processing job with its own fetch rule',
    async (_name, _group, entry) => {
      const { client, sent, sleeps } = harness(foreign);
      const answer = await client.call(entry.name, requestFor(entry, { mock: '[processing:2]' }));
      expectSuccess(entry, answer);
      const job = JSON.parse(sent[0]!.answer) as { status: string; id: number; fetch_result: string };
      expect(job.status).toBe('processing');
      // The fetch_result points off the endpoint's origin: the key does not follow it.
      expect(job.fetch_result.startsWith('http://elsewhere.invalid/')).toBe(true);
      const via = byName(entry.fetch as string)!;
      const rule = fetchRequest(via, job.id);
      expect(sent.map((s) => s.url)).toEqual([`${foreign.url}${entry.path}`, `${foreign.url}${rule.path}`, `${foreign.url}${rule.path}`]);
      for (const poll of sent.slice(1)) expect(poll.body).toEqual({ ...rule.body, key: KEY });
      expect(sleeps).toEqual([1000, 1000]);
    },
  );

  it('polls v4 jobs with request_id in the body, and v6 jobs by their family\'s fetch path', async () => {
    const { client, sent } = harness(foreign);
    await client.call('dreambooth', requestFor(byName('dreambooth')!, { model_id: 'midjourney', mock: '[processing:1]' }));
    const id = (JSON.parse(sent[0]!.answer) as { id: number }).id;
    expect(sent[1]).toMatchObject({ url: `${foreign.url}/api/v4/dreambooth/fetch`, body: { key: KEY, request_id: id } });
    const v6 = harness(foreign);
    await v6.client.call('text2video', { prompt: 'waves', mock: '[processing:1]' });
    const videoId = (JSON.parse(v6.sent[0]!.answer) as { id: number }).id;
    expect(v6.sent[1]).toMatchObject({ url: `${foreign.url}/api/v6/video/fetch/${videoId}`, body: { key: KEY } });
  });

  it('follows a same-origin fetch_result where the docs name no fetch call (chat)', async () => {
    const entry = byName('uncensored_chat')!;
    const { client, sent } = harness(api);
    const answer = (await client.call('uncensored_chat', requestFor(entry, { mock: '[processing:2]' }))) as Record<string, unknown>;
    expect(answer).toMatchObject({ status: 'success', message: 'mock reply to 1 message(s)' });
    const job = JSON.parse(sent[0]!.answer) as { id: number; fetch_result: string };
    expect(sent.slice(1).map((s) => s.url)).toEqual([job.fetch_result, job.fetch_result]);
    // Without one on the endpoint's origin there is nowhere safe to ask: an error, not a guess.
    const elsewhere = harness(foreign);
    const stuck = await elsewhere.client.call('uncensored_chat', requestFor(entry, { mock: '[processing:1]' }));
    expect(stuck).toMatchObject({ status: 'error', message: expect.stringMatching(/gave no fetch_result on its own origin/) });
    expect(elsewhere.sent).toHaveLength(1);
  });

  it('reads jobs with the calls that read them, and fills path fields into the path only', async () => {
    const { client, sent } = harness();
    const readerFor: Record<string, string> = {
      fetch: 'text2img', dreambooth_fetch: 'dreambooth', image_editing_fetch: 'removebg_mask', video_fetch: 'img2video', fetch_3d: 'image_to_3d',
    };
    for (const reader of readers) {
      sent.length = 0;
      let request: Record<string, unknown> = {};
      const source = readerFor[reader.name];
      if (source) {
        const done = (await client.call(source, requestFor(byName(source)!, { mock: '[processing:5]' }))) as { id: number };
        expect(done.id, reader.name).toBeDefined();
        request = reader.name === 'dreambooth_fetch' ? { request_id: done.id } : { id: done.id };
      } else if (reader.fields.includes('training_id')) {
        request = { training_id: 'mock-training-1' };
      }
      sent.length = 0;
      const answer = await client.call(reader.name, request);
      expect((answer as { status?: string }).status ?? 'list', `${reader.name} ${JSON.stringify(answer)}`).not.toBe('error');
      if (reader.response === 'list') expect(Array.isArray(answer)).toBe(true);
      expect(sent, reader.name).toHaveLength(1);
      if (request.training_id) {
        expect(sent[0]!.url).toBe(`${api.url}${reader.path.replace('{training_id}', 'mock-training-1')}`);
        expect(sent[0]!.body).toEqual({ key: KEY });
      }
    }
  });

  it('answers a missing path field as a field error without sending anything', async () => {
    const { client, sent } = harness();
    expect(await client.call('fine_tune_status', {})).toEqual({ status: 'error', message: { training_id: ['The training id is needed: fine_tune_status takes it in its path.'] } });
    expect(await client.call('video_fetch', { id: '' })).toEqual({ status: 'error', message: { id: ['A request id is needed to fetch a result.'] } });
    expect(sent).toEqual([]);
  });

  it('sends the key only in JSON bodies, never in a URL', async () => {
    const { client } = harness();
    for (const entry of queued) await client.call(entry.name, requestFor(entry, { mock: '[processing:1]' }));
    await client.call('fine_tune_status', { training_id: 'mock-training-1' });
    expect(api.requests.length).toBeGreaterThan(queued.length * 2);
    for (const q of api.requests) {
      expect(q.path).not.toContain(KEY);
      expect(q.method).toBe('POST');
      expect(q.body).toMatchObject({ key: KEY });
    }
  });

  it('passes lists, records and single-URL answers through, with the key stripped wherever it was echoed', async () => {
    const { client } = harness();
    for (const name of ['model_list', 'base64_crop', 'super_resolution', 'fine_tune_status', 'uncensored_chat']) {
      const entry = byName(name)!;
      const answer = await client.call(name, requestFor(entry, { mock: '[echo-key]', training_id: 't1' }));
      const text = JSON.stringify(answer);
      expect(text, name).not.toContain(KEY);
      if (name !== 'fine_tune_status') expect(text, name).toContain('sent with ***');
    }
    const list = (await client.call('model_list')) as Record<string, unknown>[];
    expect(list.map((m) => m.model_id)).toEqual(['mock-model', 'mock-xl']);
    const upscaled = (await client.call('super_resolution', { url: `${api.url}/output/64x64/1-0.png`, scale: 2 })) as Record<string, unknown>;
    expect(upscaled).toMatchObject({ status: 'success', output: expect.stringMatching(/\.png$/) });
  });

  it('still rejects what is not its call\'s shape, and normalises errors for every call', async () => {
    const { client } = harness();
    expect(await client.call('text2video', { prompt: '[unexpected]' })).toEqual({
      status: 'error', message: 'The hosted API sent an answer this app does not understand: {"hello":"world"}',
    });
    // A record-shaped call passes the service's object through as it came.
    expect(await client.call('base64_crop', { image: 'data:,', mock: '[unexpected]' })).toEqual({ hello: 'world' });
    expect(await client.call('removebg_mask', { image: 'x', mock: '[messege:fields]' })).toEqual({
      status: 'error', message: { prompt: ['The prompt field is required.'], width: ['The width may not be greater than 1024.'] },
    });
    const failed = await client.call('dreambooth', { model_id: 'm', prompt: '[failed]' });
    expect(failed).toMatchObject({ status: 'error', message: expect.stringMatching(/^The hosted API could not complete request \d+: The mock hosted API failed this job\.$/) });
    expect(await client.call('controlnet', { prompt: '[http:429]' })).toEqual({ status: 'error', message: 'The hosted API refused the request (HTTP 429 Too Many Requests).' });
  });

  it('keeps the safeties: no key, offline, redirects, unknown names, bad requests, the v3 calls unchanged', async () => {
    const none = harness(api, { key: '' });
    expect(await none.client.call('model_list')).toEqual({ status: 'error', message: 'An API key is needed for the hosted API (remote mode).' });
    const offline = harness(api, { isOnline: () => false });
    expect(await offline.client.call('text2video', { prompt: 'x' })).toMatchObject({ status: 'error', message: expect.stringMatching(/offline/) });
    expect(none.sent.length + offline.sent.length).toBe(0);
    const { client, sent } = harness();
    expect(await client.call('outpaint', { image: 'x', mock: '[redirect]' })).toMatchObject({ status: 'error', message: expect.stringMatching(/redirect/) });
    expect(sent).toHaveLength(1);
    expect(await client.call('no_such_call', {})).toMatchObject({ status: 'error', message: expect.stringMatching(/^There is no hosted call named "no_such_call"/) });
    expect(await client.call('model_list', 'not an object')).toEqual({ status: 'error', message: 'The model_list request must be a JSON object.' });
    expect(await client.call('system_load')).toEqual({ status: 'ok', queue_num: 0, queue_time: 0 });
    const viaCall = (await client.call('text2img', requestFor(byName('text2img')!))) as Record<string, unknown>;
    expect(viaCall).toMatchObject({ status: 'success', meta: { runtime: 'remote' } });
    expect(await client.call('text2img', 'nope')).toEqual({ status: 'error', message: 'The text2img request must be a JSON object.' });
  });

  it('cancel() stops polling any call, saying how to read the job later', async () => {
    let client!: RemoteClient;
    ({ client } = harness(foreign, {
      sleep: async () => {
        client.cancel();
      },
    }));
    const r = await client.call('text_to_3d', { prompt: 'a chair', mock: '[processing:5]' });
    expect(r).toMatchObject({
      status: 'error', message: expect.stringMatching(/^The request was cancelled\. Request (\d+) may still finish on the hosted API; fetch it later with call\("fetch_3d", \{"id":\1\}\)\.$/),
    });
  });
});
