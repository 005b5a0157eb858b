import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MISSING_KEY_MESSAGE, OFFLINE_MESSAGE, RemoteClient, type RemoteClientOptions } from '../../src/api/remote-client.ts';
import type { ErrorResponse, SuccessResponse } from '../../src/api/responses.ts';
import { startMockHostedApi, type MockHostedApi } from '../support/mock-hosted-api.ts';

const KEY = 'test-key';

/** A text2img request as a hosted-API user writes it (strings for numbers, null for optionals). */
function request(prompt: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    key: '', prompt, negative_prompt: null, width: '64', height: '64', samples: '1', num_inference_steps: '20',
    safety_checker: 'no', enhance_prompt: 'no', guidance_scale: 7.5, seed: '42', webhook: null, track_id: null, ...extra,
  };
}

interface Harness {
  client: RemoteClient;
  /** Every wait the client asked for, in ms (the fake sleep returns at once). */
  sleeps: number[];
  /** Every URL the client fetched, with the body it sent. */
  sent: { url: string; body: unknown }[];
}

let api: MockHostedApi;
beforeAll(async () => {
  api = await startMockHostedApi({ key: KEY });
});
afterAll(() => api.close());
afterEach(() => {
  api.requests.length = 0;
});

function harness(options: Partial<RemoteClientOptions> = {}, endpoint = api.url): Harness {
  const sleeps: number[] = [];
  const sent: { url: string; body: unknown }[] = [];
  const spyFetch: typeof fetch = (input, init) => {
    sent.push({ url: String(input), body: typeof init?.body === 'string' ? JSON.parse(init.body) : init?.body });
    return fetch(input, init);
  };
  const client = new RemoteClient({
    endpoint, key: KEY, fetch: spyFetch, timeoutMs: 5_000, isOnline: () => true,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options,
  });
  return { client, sleeps, sent };
}

const apiPaths = () => api.requests.map((r) => r.path);

describe('RemoteClient against the mock hosted API', () => {
  it('returns a success with the output URLs and meta.runtime = "remote"', async () => {
    const { client, sent } = harness();
    const r = (await client.text2img(request('a cat on a bench', { samples: '2' }))) as SuccessResponse;
    expect(r.status).toBe('success');
    expect(r.output).toHaveLength(2);
    expect(r.meta.runtime).toBe('remote');
    expect(r.meta.prompt).toBe('a cat on a bench');
    expect(r.meta.seed).toBe(42);
    expect(r.meta).not.toHaveProperty('key');
    expect(sent.map((s) => s.url)).toEqual([`${api.url}/api/v3/text2img`]);
    // The request went out unchanged apart from the key.
    expect(sent[0]!.body).toEqual({ ...request('a cat on a bench', { samples: '2' }), key: KEY });
    const png = await fetch(r.output[0]!);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await png.arrayBuffer()).subarray(1, 4)).toEqual(new TextEncoder().encode('PNG'));
  });

  it('posts img2img and inpaint to their own endpoints', async () => {
    const { client } = harness();
    const img = await client.img2img(request('img', { init_image: `${api.url}/output/64x64/1-0.png`, strength: 0.7 }));
    const inp = await client.inpaint(request('inp', { init_image: `${api.url}/output/64x64/1-0.png`, mask_image: `${api.url}/output/64x64/2-0.png` }));
    expect(img.status).toBe('success');
    expect(inp.status).toBe('success');
    expect(apiPaths()).toEqual(['/api/v3/img2img', '/api/v3/inpaint']);
  });

  it('waits out a processing job, polling fetch_result until success', async () => {
    const { client, sleeps, sent } = harness();
    const r = (await client.text2img(request('queued [processing:3]'))) as SuccessResponse;
    expect(r.status).toBe('success');
    expect(r.meta.runtime).toBe('remote');
    expect(sleeps).toEqual([1000, 1000, 1000]);
    expect(sent.map((s) => s.url)).toEqual([
      `${api.url}/api/v3/text2img`,
      `${api.url}/api/v3/fetch/${r.id}`, `${api.url}/api/v3/fetch/${r.id}`, `${api.url}/api/v3/fetch/${r.id}`,
    ]);
    for (const s of sent.slice(1)) expect(s.body).toEqual({ key: KEY });
  });

  it.each([
    ['[error:string]', 'The mock hosted API was asked to fail.'],
    ['[messege:string]', 'The mock hosted API was asked to fail.'],
    ['[error:fields]', { prompt: ['The prompt field is required.'], width: ['The width may not be greater than 1024.'] }],
    ['[messege:fields]', { prompt: ['The prompt field is required.'], width: ['The width may not be greater than 1024.'] }],
  ])('normalises the error shape %s to {status, message}', async (marker, message) => {
    const { client, sent } = harness();
    const r = await client.text2img(request(`x ${marker}`));
    expect(r).toEqual({ status: 'error', message });
    expect(sent).toHaveLength(1);
  });

  it('passes a failed job through fetch and turns it into an error for the generation call', async () => {
    const { client } = harness();
    const r = (await client.text2img(request('doomed [failed]'))) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/could not complete request \d+: The mock hosted API failed this job\./);
    // The job keeps its failed state on the hosted side: fetch(id) shows the hosted object itself.
    const id = Number(/request (\d+)/.exec(r.message as string)![1]);
    expect(await client.fetch(id)).toEqual({ status: 'failed', id, message: 'The mock hosted API failed this job.', output: '' });
  });

  it('fetch(id) shows processing, then the failed object, as the hosted API reports them', async () => {
    // Drive the mock directly for the first answer so the job is left queued for fetch().
    const first = await fetch(`${api.url}/api/v3/text2img`, { method: 'POST', body: JSON.stringify({ ...request('later [failed]'), key: KEY }) });
    const queued = (await first.json()) as { status: string; id: number };
    expect(queued.status).toBe('processing');
    const { client } = harness();
    expect(await client.fetch(queued.id)).toEqual({ status: 'failed', id: queued.id, message: 'The mock hosted API failed this job.', output: '' });

    const second = await fetch(`${api.url}/api/v3/text2img`, { method: 'POST', body: JSON.stringify({ ...request('later [processing:2]'), key: KEY }) });
    const job = (await second.json()) as { id: number };
    const snapshot = await client.fetch(job.id);
    expect(snapshot).toMatchObject({ status: 'processing', id: job.id, eta: 1, messege: 'Try to fetch request after given estimated time' });
    const done = (await client.fetch(job.id)) as SuccessResponse;
    expect(done.status).toBe('success');
    expect(done.meta.runtime).toBe('remote');
    expect(await client.fetch(999_999)).toEqual({ status: 'error', message: 'Request not found' });
  });

  it('fetch(id, {wait: true}) polls until the job settles', async () => {
    const first = await fetch(`${api.url}/api/v3/text2img`, { method: 'POST', body: JSON.stringify({ ...request('wait [processing:3]'), key: KEY }) });
    const job = (await first.json()) as { id: number };
    const { client, sleeps } = harness();
    const done = await client.fetch(job.id, { wait: true });
    expect(done.status).toBe('success');
    expect(sleeps).toEqual([1000, 1000]);
  });

  it('answers a timeout error when the API is slower than timeoutMs, without retrying', async () => {
    const { client, sleeps } = harness({ timeoutMs: 200 });
    const started = Date.now();
    const r = await client.text2img(request('slow [slow:2000]'));
    expect(r).toEqual({ status: 'error', message: 'The hosted API did not answer within 0.2 s.' });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(sleeps).toEqual([]);
    expect(apiPaths()).toEqual(['/api/v3/text2img']);
  });

  it('retries a dropped connection with exponential backoff, then answers an error', async () => {
    const { client, sleeps } = harness({ retries: 2 });
    const r = (await client.text2img(request('gone [drop]'))) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/^The hosted API could not be reached: /);
    expect(sleeps).toEqual([500, 1000]);
    expect(apiPaths()).toEqual(['/api/v3/text2img', '/api/v3/text2img', '/api/v3/text2img']);
  });

  it('retries HTTP 5xx and succeeds on the third attempt', async () => {
    const { client, sleeps } = harness({ retries: 2 });
    const r = await client.text2img(request('flaky [5xx:2]'));
    expect(r.status).toBe('success');
    expect(sleeps).toEqual([500, 1000]);
    expect(api.requests).toHaveLength(3);
  });

  it('gives up after `retries` 5xx answers with the server error', async () => {
    const { client } = harness({ retries: 1 });
    const r = await client.text2img(request('down [5xx:5]'));
    expect(r).toEqual({ status: 'error', message: 'The hosted API had a server error (HTTP 503 Service Unavailable): Service temporarily unavailable' });
    expect(api.requests).toHaveLength(2);
  });

  it('never retries a 4xx or an error body', async () => {
    const { client, sleeps } = harness();
    expect(await client.text2img(request('nope [http:404]'))).toEqual({ status: 'error', message: 'The hosted API refused the request (HTTP 404 Not Found).' });
    expect(await client.text2img(request('nope [http:429]'))).toEqual({ status: 'error', message: 'The hosted API refused the request (HTTP 429 Too Many Requests).' });
    expect(await client.text2img(request('nope [error:string]'))).toMatchObject({ status: 'error' });
    expect(sleeps).toEqual([]);
    expect(api.requests).toHaveLength(3);
  });

  it('reports non-JSON and unexpected bodies clearly', async () => {
    const { client } = harness();
    const html = (await client.text2img(request('[html]'))) as ErrorResponse;
    expect(html.message).toMatch(/^The hosted API sent an answer that is not JSON \(HTTP 200 OK\): <!doctype html>/);
    const odd = (await client.text2img(request('[unexpected]'))) as ErrorResponse;
    expect(odd).toEqual({ status: 'error', message: 'The hosted API sent an answer this app does not understand: {"hello":"world"}' });
  });

  it('does not follow a redirect (the key would go with the body)', async () => {
    const { client, sent } = harness();
    const r = (await client.text2img(request('[redirect]'))) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/redirect/);
    expect(sent).toHaveLength(1);
  });

  it('answers a missing key without sending anything', async () => {
    const { client, sent } = harness({ key: '' });
    expect(await client.text2img(request('cat'))).toEqual({ status: 'error', message: MISSING_KEY_MESSAGE });
    expect(await client.fetch(1)).toEqual({ status: 'error', message: MISSING_KEY_MESSAGE });
    expect(await client.systemLoad()).toEqual({ status: 'error', message: MISSING_KEY_MESSAGE });
    expect(sent).toEqual([]);
  });

  it("sends the request's own key when it has one, and the saved key only when it has none", async () => {
    const none = harness({ key: '' });
    const r = await none.client.text2img(request('cat', { key: KEY }));
    expect(r.status).toBe('success');
    expect(none.sent[0]!.body).toMatchObject({ key: KEY });
    // A saved key never overrides the request's own: here the request's key is the valid one.
    const saved = harness({ key: 'saved-but-wrong' });
    expect((await saved.client.text2img(request('cat', { key: KEY }))).status).toBe('success');
    expect(saved.sent.map((s) => (s.body as { key: string }).key)).toEqual([KEY]);
    // No key in the request: the saved one fills in.
    const fallback = harness();
    expect((await fallback.client.text2img(request('cat', { key: '  ' }))).status).toBe('success');
    expect((fallback.sent[0]!.body as { key: string }).key).toBe(KEY);
  });

  it("polls a processing job with the request's own key, and reads a key function on every call", async () => {
    const { client, sent } = harness({ key: () => '' });
    const r = await client.text2img(request('later [processing:2]', { key: KEY }));
    expect(r.status).toBe('success');
    expect(sent.length).toBeGreaterThan(1);
    for (const s of sent) expect((s.body as { key: string }).key).toBe(KEY);
    let held = '';
    const late = harness({ key: () => held });
    expect(await late.client.systemLoad()).toEqual({ status: 'error', message: MISSING_KEY_MESSAGE });
    held = KEY;
    expect(await late.client.systemLoad()).toMatchObject({ status: 'ok' });
  });

  it('relays the hosted answer to a wrong key', async () => {
    const { client } = harness({ key: 'not-the-key' });
    expect(await client.text2img(request('cat'))).toEqual({ status: 'error', message: 'Invalid API key' });
  });

  it('answers at once when offline, without sending anything', async () => {
    const { client, sent } = harness({ isOnline: () => false });
    expect(await client.text2img(request('cat'))).toEqual({ status: 'error', message: OFFLINE_MESSAGE });
    expect(await client.systemLoad()).toEqual({ status: 'error', message: OFFLINE_MESSAGE });
    expect(sent).toEqual([]);
  });

  it('stops polling after pollLimitMs and says how to fetch the job later', async () => {
    const { client, sleeps } = harness({ pollLimitMs: 3_000 });
    const r = (await client.text2img(request('forever [processing:1000]'))) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/^The hosted API is still processing request (\d+) after 3 s; fetch it later with fetch\(\1\)\.$/);
    // The time spent in HTTP requests counts too, so the last wait is cut to what is left of the limit.
    expect(sleeps.slice(0, 2)).toEqual([1000, 1000]);
    expect(sleeps).toHaveLength(3);
    expect(sleeps[2]).toBeGreaterThan(500);
    expect(api.requests.filter((q) => q.path.startsWith('/api/v3/fetch/'))).toHaveLength(3);
  });

  it('sends the key only in JSON bodies, never in a URL', async () => {
    const { client, sent } = harness();
    await client.text2img(request('a [processing:1]'));
    await client.systemLoad();
    await client.fetch(1000);
    expect(api.requests.length).toBeGreaterThanOrEqual(4);
    for (const q of api.requests) {
      expect(q.path).not.toContain(KEY);
      expect(q.body).toMatchObject({ key: KEY });
      expect(q.headers['content-type']).toBe('application/json');
    }
    for (const s of sent) expect(s.url.startsWith(`${api.url}/api/v3/`)).toBe(true);
  });

  it('never sends the key to a fetch_result on another origin: polls the endpoint instead', async () => {
    const other = await startMockHostedApi({ key: KEY });
    const foreign = await startMockHostedApi({ key: KEY, fetchResultOrigin: other.url });
    try {
      const { client, sent } = harness({}, foreign.url);
      const r = (await client.text2img(request('elsewhere [processing:2]'))) as SuccessResponse;
      expect(r.status).toBe('success');
      expect(other.requests).toEqual([]);
      expect(sent.every((s) => s.url.startsWith(`${foreign.url}/`))).toBe(true);
      expect(foreign.requests.map((q) => q.path)).toEqual(['/api/v3/text2img', `/api/v3/fetch/${r.id}`, `/api/v3/fetch/${r.id}`]);
    } finally {
      await Promise.all([other.close(), foreign.close()]);
    }
  });

  it('systemLoad() answers the queue state', async () => {
    const { client, sent } = harness();
    expect(await client.systemLoad()).toEqual({ status: 'ok', queue_num: 0, queue_time: 0 });
    expect(sent).toEqual([{ url: `${api.url}/api/v3/system_load`, body: { key: KEY } }]);
  });

  it('turns a dead endpoint into an error response, never an exception', async () => {
    const closed = await startMockHostedApi();
    const url = closed.url;
    await closed.close();
    const { client } = harness({ retries: 0 }, url);
    const r = (await client.systemLoad()) as ErrorResponse;
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/^The hosted API could not be reached: fetch failed/);
    expect(await new RemoteClient({ key: KEY, endpoint: 'not a url' }).text2img(request('x'))).toMatchObject({ status: 'error' });
    expect(await harness().client.text2img('not an object')).toEqual({ status: 'error', message: 'The text2img request must be a JSON object.' });
  });

  it('cancel() stops a polling job with an error that keeps its id', async () => {
    let client!: RemoteClient;
    ({ client } = harness({
      sleep: async () => {
        client.cancel();
      },
    }));
    const r = (await client.text2img(request('cancel me [processing:5]'))) as ErrorResponse;
    expect(r.message).toMatch(/^The request was cancelled\. Request (\d+) may still finish on the hosted API; fetch it later with fetch\(\1\)\.$/);
  });
});
