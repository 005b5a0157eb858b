/**
 * Webhook delivery against a real local HTTP server: delivered, retried once when no answer came
 * (network error, 408/429/5xx), never sent twice after a timeout or a refusal, every copy with the
 * same idempotency id, and never carrying the API key.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { postWebhook, webhookPayload } from '../../src/api/webhook.ts';

const SECRET = 'sk-live-never-send-me';

interface Received {
  method: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface TestServer {
  url: string;
  received: Received[];
  close: () => Promise<void>;
}

const servers: TestServer[] = [];

/** A server on 127.0.0.1 (port 0) answering the n-th request with handlers[n] (the last one repeats). */
async function startServer(...handlers: ((res: ServerResponse) => void)[]): Promise<TestServer> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      handlers[Math.min(received.length - 1, handlers.length - 1)](res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const handle: TestServer = {
    url: `http://127.0.0.1:${port}/hook?source=test`,
    received,
    close: () => {
      server.closeAllConnections(); // a hanging request (the timeout test) would keep close() waiting
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(handle);
  return handle;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const ok = (res: ServerResponse) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
const fail = (res: ServerResponse) => res.writeHead(500).end('boom');
const hang = () => undefined;

function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

const RESULT = {
  status: 'success',
  generationTime: 2.5,
  id: 7,
  output: ['blob:http://localhost/abc'],
  meta: { prompt: 'a cat sitting on a bench', seed: 42, key: SECRET },
  key: SECRET,
};

describe('postWebhook', () => {
  it('delivers the result plus track_id as a JSON POST, without the API key', async () => {
    const server = await startServer(ok);
    const { waits, sleep } = recordingSleep();
    const result = await postWebhook(server.url, webhookPayload(RESULT, 'track-1'), { sleep });
    expect(result).toEqual({ delivered: true, attempts: 1, id: expect.any(String) });
    expect(waits).toEqual([]);
    expect(server.received).toHaveLength(1);
    const [request] = server.received;
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers.authorization).toBeUndefined();
    expect(request.headers.cookie).toBeUndefined();
    expect(request.body).not.toContain(SECRET);
    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(body).toEqual({
      status: 'success',
      generationTime: 2.5,
      id: 7,
      output: ['blob:http://localhost/abc'],
      meta: { prompt: 'a cat sitting on a bench', seed: 42 },
      track_id: 'track-1',
      webhook_id: result.id,
    });
    // The caller's object still has its fields.
    expect(RESULT.key).toBe(SECRET);
    expect(RESULT.meta.key).toBe(SECRET);
  });

  it('retries once after a 500, with the default 2 s backoff, then delivers', async () => {
    const server = await startServer(fail, ok);
    const { waits, sleep } = recordingSleep();
    const result = await postWebhook(server.url, webhookPayload(RESULT, null), { sleep });
    expect(result).toMatchObject({ delivered: true, attempts: 2 });
    expect(waits).toEqual([2000]);
    expect(server.received.map((r) => r.body)).toEqual([server.received[0].body, server.received[0].body]);
    expect(JSON.parse(server.received[1].body)).toMatchObject({ id: 7, track_id: null });
  });

  it('gives up after two failed attempts and reports why, without throwing', async () => {
    const server = await startServer(fail);
    const { waits, sleep } = recordingSleep();
    const result = await postWebhook(server.url, RESULT, { sleep, retryDelayMs: 50 });
    expect(result).toMatchObject({ delivered: false, attempts: 2, error: 'HTTP 500 Internal Server Error' });
    expect(waits).toEqual([50]);
    expect(server.received).toHaveLength(2);
  });

  it('reports a network error (nothing listening) after the retry', async () => {
    const server = await startServer(ok);
    const url = server.url;
    await servers.splice(0)[0].close();
    const { sleep } = recordingSleep();
    const result = await postWebhook(url, RESULT, { sleep });
    expect(result.delivered).toBe(false);
    expect(result.attempts).toBe(2);
    expect(result.error).toMatch(/^Network error/);
  });

  it('times out an attempt that gets no answer, and does not send it again (the receiver may have it)', async () => {
    const server = await startServer(hang, ok);
    const { waits, sleep } = recordingSleep();
    const started = performance.now();
    const result = await postWebhook(server.url, RESULT, { sleep, timeoutMs: 150 });
    const elapsed = performance.now() - started;
    expect(result).toMatchObject({ delivered: false, attempts: 1, error: 'No answer within 150 ms; not sent again, as the receiver may have it.' });
    expect(server.received).toHaveLength(1);
    expect(waits).toEqual([]);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(5000);
  });

  it('refuses URLs that are not http(s) or carry credentials, sending nothing', async () => {
    const calls: string[] = [];
    const spy: typeof fetch = async (input) => {
      calls.push(String(input));
      return new Response(null, { status: 200 });
    };
    for (const url of ['ftp://example.com/hook', 'javascript:alert(1)', 'file:///etc/passwd', 'not a url', 'https://user:pw@example.com/hook']) {
      const result = await postWebhook(url, RESULT, { fetch: spy });
      expect(result.delivered).toBe(false);
      expect(result.attempts).toBe(0);
      expect(result.error).toBeTruthy();
    }
    expect(calls).toEqual([]);
  });

  it('asks fetch for no credentials', async () => {
    const inits: RequestInit[] = [];
    const spy: typeof fetch = async (_input, init) => {
      inits.push(init ?? {});
      return new Response(null, { status: 204 });
    };
    expect(await postWebhook('https://hooks.example/x', RESULT, { fetch: spy })).toMatchObject({ delivered: true, attempts: 1 });
    expect(inits[0].credentials).toBe('omit');
    expect(inits[0].method).toBe('POST');
    expect(String(inits[0].body)).not.toContain(SECRET);
  });

  it('reports a payload that cannot be serialized instead of throwing', async () => {
    const circular: Record<string, unknown> = { status: 'success' };
    circular.self = circular;
    const result = await postWebhook('https://hooks.example/x', circular, { fetch: async () => new Response(null) });
    expect(result.delivered).toBe(false);
    expect(result.attempts).toBe(0);
    expect(result.error).toMatch(/could not be serialized/);
  });
});

describe('postWebhook sends a slow receiver one delivery, and any copy with the same id', () => {
  /** Answers 200 after `ms`: slower than the client's timeout in the test, so the old code aborted and sent it again. */
  const slow = (ms: number) => (res: ServerResponse) => void setTimeout(() => res.writeHead(200).end('ok'), ms);
  const ids = (server: TestServer) => server.received.map((r) => [r.headers['idempotency-key'], (JSON.parse(r.body) as { webhook_id?: unknown }).webhook_id]);

  it('a receiver that answers after the timeout gets exactly one delivery', async () => {
    const server = await startServer(slow(600));
    const { waits, sleep } = recordingSleep();
    const result = await postWebhook(server.url, RESULT, { sleep, timeoutMs: 150 });
    // Let the receiver's late answer (and any second copy) arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(server.received).toHaveLength(1);
    expect(waits).toEqual([]);
    expect(result.delivered).toBe(false);
    expect(result.attempts).toBe(1);
    expect(result.error).toMatch(/^No answer within 150 ms/);
  });

  it('sends one id as the Idempotency-Key header and as webhook_id in the body, the same on the retry', async () => {
    const server = await startServer(fail, ok);
    const { sleep } = recordingSleep();
    const result = await postWebhook(server.url, webhookPayload(RESULT, 'track-9'), { sleep });
    expect(result.delivered).toBe(true);
    expect(result.attempts).toBe(2);
    const [first, second] = ids(server);
    expect(first[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first).toEqual([first[0], first[0]]);
    expect(second).toEqual(first);
    expect(result.id).toBe(first[0]);
  });

  it('gives each delivery its own id', async () => {
    const server = await startServer(ok);
    await postWebhook(server.url, RESULT);
    await postWebhook(server.url, RESULT);
    const [a, b] = ids(server);
    expect(a[0]).not.toBe(b[0]);
  });

  it('retries 429 and 503 (the receiver says try again) but not 400, 404 or 410 (it refused)', async () => {
    for (const status of [429, 503]) {
      const server = await startServer((res) => res.writeHead(status).end(), ok);
      const { sleep } = recordingSleep();
      expect(await postWebhook(server.url, RESULT, { sleep })).toMatchObject({ delivered: true, attempts: 2 });
    }
    for (const status of [400, 404, 410]) {
      const server = await startServer((res) => res.writeHead(status).end());
      const { waits, sleep } = recordingSleep();
      const result = await postWebhook(server.url, RESULT, { sleep });
      expect(result).toMatchObject({ delivered: false, attempts: 1 });
      expect(result.error).toMatch(new RegExp(`^HTTP ${status}`));
      expect(server.received).toHaveLength(1);
      expect(waits).toEqual([]);
    }
  });

  it('retries a network error that came before any answer, with the same id', async () => {
    const calls: Headers[] = [];
    const flaky: typeof fetch = async (_input, init) => {
      calls.push(new Headers(init?.headers));
      if (calls.length === 1) throw new TypeError('Failed to fetch');
      return new Response(null, { status: 204 });
    };
    const { sleep } = recordingSleep();
    expect(await postWebhook('https://hooks.example/x', RESULT, { fetch: flaky, sleep })).toMatchObject({ delivered: true, attempts: 2 });
    expect(calls[1].get('Idempotency-Key')).toBe(calls[0].get('Idempotency-Key'));
  });

  it('makes its id without crypto.randomUUID, which a page served over plain http lacks', async () => {
    const real = globalThis.crypto;
    vi.stubGlobal('crypto', { getRandomValues: real.getRandomValues.bind(real) });
    try {
      const sent: Headers[] = [];
      const spy: typeof fetch = async (_input, init) => {
        sent.push(new Headers(init?.headers));
        return new Response(null, { status: 204 });
      };
      const result = await postWebhook('https://hooks.example/x', RESULT, { fetch: spy });
      expect(result.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(sent[0].get('Idempotency-Key')).toBe(result.id);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
