/**
 * A stand-in for the hosted Stable Diffusion API on loopback, for unit and browser tests. It serves
 * every path of the endpoint table (src/api/endpoints.ts), answering in the hosted shapes: the
 * generation shape for image, video and 3D calls, one URL for super_resolution, arrays for the
 * model lists, the service's own objects for the rest; every call checks the key in the body.
 * Its behaviour is picked by markers in the request's prompt, or, for any call, in a `mock` field
 * (`{mock: "[processing:2]"}`), so a page can drive every case through the ordinary calls:
 *   (none)            immediate success; outputs are PNGs this server serves, meta echoes the request
 *   [processing:N]    processing (eta 1), success after N fetches
 *   [failed]          processing, then fetch answers {status:'failed', ...}
 *   [error:string]    {status:'error', message:'...'}       [error:fields]    message as a field map
 *   [messege:string]  the same with the misspelt key        [messege:fields]  likewise
 *   [slow:MS]         answers after MS ms                    [drop]            destroys the socket unanswered
 *   [5xx:N]           HTTP 503 the first N times this prompt arrives, then as without the marker
 *   [http:CODE]       HTTP CODE with a plain-text body       [html]            HTTP 200 with an HTML page
 *   [unexpected]      HTTP 200 JSON without a status         [redirect]        HTTP 307 to another host
 *   [echo-key]        the answer carries the key back (nested, and inside a string), to test that it is stripped
 * A queued job is answered by its call's fetch rule (v3 /api/v3/fetch/{id}, v4 /api/v4/dreambooth/fetch
 * with request_id, v6 /api/v6/<family>/fetch/{id}, training's fine_tune_status/{training_id}), and by
 * a mock-only /api/v6/llm/fetch/{id} for chat, whose processing answers name it as fetch_result.
 * A wrong or missing key answers {status:'error', message:'Invalid API key'}.
 *
 * Run directly (`npx tsx tests/support/mock-hosted-api.ts --port 4398 [--key K]`) it serves until killed.
 */
import { closeServer, listenOnLoopback, readBody } from './http-server.ts';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { encode } from 'fast-png';
import { byName, ENDPOINTS, fetchRequest, type EndpointName, type EndpointSpec } from '../../src/api/endpoints.ts';

export interface MockHostedApiOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The one key the mock accepts; 'test-key' by default. */
  key?: string;
  /** Origin put in fetch_result instead of the mock's own (to test that the key never follows it). */
  fetchResultOrigin?: string;
}

export interface RecordedRequest {
  method: string;
  /** Path and query string as received. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (the raw text when it is not JSON; null for none). */
  body: unknown;
}

export interface MockHostedApi {
  url: string;
  close(): Promise<void>;
  requests: RecordedRequest[];
}

interface Job {
  fetchesLeft: number;
  outcome: 'success' | 'failed';
  /** What its processing answers name as fetch_result. */
  fetchResult: string;
  /** The answer once done: the generation shape, or the call's own object or list. */
  success: unknown;
}

type Json = Record<string, unknown>;

/** A matcher per table path: `{field}` matches one path segment. */
const ROUTES = ENDPOINTS.map((entry) => ({
  entry,
  pattern: new RegExp(`^${entry.path.split(/\{[a-z_0-9]+\}/i).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('([^/]+)')}$`),
}));

/** The calls that read a job's state: another call's fetch rule names them. */
const JOB_READERS = new Set(ENDPOINTS.map((e) => e.fetch).filter((f): f is EndpointName => typeof f === 'string' && f !== 'fetch_result'));

/** Where the mock answers chat's processing jobs (the docs name no such call; the answer's fetch_result points here). */
const CHAT_FETCH = /^\/api\/v6\/llm\/fetch\/([^/]+)$/;

const CORS_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  // Idempotency-Key: the app's webhooks carry it (src/api/webhook.ts), and a page may only send it when the preflight allows it.
  'Access-Control-Allow-Headers': 'Content-Type, Accept, Idempotency-Key',
  'Access-Control-Max-Age': '600',
};

const FIELD_ERRORS = { prompt: ['The prompt field is required.'], width: ['The width may not be greater than 1024.'] };
const PROCESSING_TEXT = 'Try to fetch request after given estimated time';

export async function startMockHostedApi(options: MockHostedApiOptions = {}): Promise<MockHostedApi> {
  const validKey = options.key ?? 'test-key';
  const requests: RecordedRequest[] = [];
  const jobs = new Map<string, Job>();
  const failuresLeft = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let nextId = 1000;
  let base = '';

  const server = createServer((req, res) => {
    readBody(req).then((text) => handle(req, res, text), () => req.socket.destroy());
  });

  function handle(req: IncomingMessage, res: ServerResponse, text: string): void {
    const path = req.url ?? '/';
    const body = parseBody(text);
    requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, body });
    if (req.method === 'OPTIONS') return send(res, 204, '', 'text/plain');
    const pathname = path.split('?')[0]!;

    const image = /^\/output\/(\d+)x(\d+)\/(\d+)-(\d+)\.png$/.exec(pathname);
    if (req.method === 'GET' && image) return send(res, 200, outputPng(+image[1]!, +image[2]!, +image[3]! + +image[4]!), 'image/png');
    if (req.method === 'GET' && pathname === '/') return send(res, 200, 'mock hosted Stable Diffusion API\n', 'text/plain');
    // A webhook receiver for the app's webhook tests, and a way for browser tests to read what arrived.
    if (req.method === 'POST' && pathname.startsWith('/webhook/')) return json(res, 200, { received: true });
    if (req.method === 'GET' && pathname === '/_requests') return json(res, 200, requests.filter((r) => r.path !== '/_requests'));
    if (req.method !== 'POST' || !pathname.startsWith('/api/')) return json(res, 404, { status: 'error', message: `No route ${req.method} ${pathname}` });
    if (!isObject(body)) return json(res, 400, { status: 'error', message: 'The body must be a JSON object.' });
    if (body.key !== validKey) return json(res, 200, { status: 'error', message: 'Invalid API key' });

    const chat = CHAT_FETCH.exec(pathname);
    if (chat) return answerFetch(res, decodeURIComponent(chat[1]!));
    for (const { entry, pattern } of ROUTES) {
      const match = pattern.exec(pathname);
      if (!match) continue;
      const params = match.slice(1).map((p) => decodeURIComponent(p));
      if (entry.name === 'system_load') return json(res, 200, { status: 'ok', queue_num: 0, queue_time: 0 });
      if (JOB_READERS.has(entry.name)) {
        const id = params[0] ?? String(body.request_id ?? '');
        // A training id the mock never queued is a run it pretends is done.
        if (entry.name === 'fine_tune_status' && !jobs.has(id)) return json(res, 200, answerFor(entry, 0, body, params));
        return answerFetch(res, id);
      }
      return answerGeneration(req, res, entry, body, params);
    }
    return json(res, 404, { status: 'error', message: `No route ${req.method} ${pathname}` });
  }

  function answerGeneration(req: IncomingMessage, res: ServerResponse, entry: EndpointSpec, body: Json, params: string[]): void {
    const prompt = `${typeof body.prompt === 'string' ? body.prompt : ''} ${typeof body.mock === 'string' ? body.mock : ''}`;
    const slow = /\[slow:(\d+)\]/.exec(prompt);
    const answer = () => generation(req, res, entry, body, prompt, params);
    if (!slow) return answer();
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer();
    }, Number(slow[1]));
    timers.add(timer);
  }

  function generation(req: IncomingMessage, res: ServerResponse, entry: EndpointSpec, body: Json, prompt: string, params: string[]): void {
    const route = entry.name;
    if (prompt.includes('[drop]')) {
      req.socket.destroy();
      return;
    }
    const fivexx = /\[5xx:(\d+)\]/.exec(prompt);
    if (fivexx) {
      const left = failuresLeft.get(prompt) ?? Number(fivexx[1]);
      if (left > 0) {
        failuresLeft.set(prompt, left - 1);
        return json(res, 503, { status: 'error', message: 'Service temporarily unavailable' });
      }
    }
    const http = /\[http:(\d{3})\]/.exec(prompt);
    if (http) return send(res, Number(http[1]), `mock: HTTP ${http[1]}\n`, 'text/plain');
    if (prompt.includes('[html]')) return send(res, 200, '<!doctype html><title>Maintenance</title><p>Back soon.</p>', 'text/html');
    if (prompt.includes('[unexpected]')) return json(res, 200, { hello: 'world' });
    if (prompt.includes('[redirect]')) {
      res.writeHead(307, { ...CORS_HEADERS, Location: `http://elsewhere.invalid${entry.path}` });
      res.end();
      return;
    }
    const error = /\[(error|messege):(string|fields)\]/.exec(prompt);
    if (error) {
      const message = error[2] === 'string' ? 'The mock hosted API was asked to fail.' : FIELD_ERRORS;
      return json(res, 200, { status: 'error', [error[1] === 'error' ? 'message' : 'messege']: message });
    }
    if ((route === 'img2img' || route === 'inpaint') && !body.init_image) {
      return json(res, 200, { status: 'error', message: { init_image: ['The init image field is required.'] } });
    }
    if (route === 'inpaint' && !body.mask_image) {
      return json(res, 200, { status: 'error', message: { mask_image: ['The mask image field is required.'] } });
    }

    const id = nextId++;
    const success = answerFor(entry, id, body, params);
    if (prompt.includes('[echo-key]')) withEchoedKey(success, body.key);
    const processing = /\[processing:(\d+)\]/.exec(prompt);
    const failed = prompt.includes('[failed]');
    if (!processing && !failed) {
      // As the hosted API does, a finished job can be fetched again by id.
      jobs.set(String(id), { fetchesLeft: 0, outcome: 'success', success, fetchResult: fetchResultFor(entry, id) });
      return json(res, 200, success);
    }
    jobs.set(String(id), { fetchesLeft: failed ? 1 : Math.max(1, Number(processing![1])), outcome: failed ? 'failed' : 'success', success, fetchResult: fetchResultFor(entry, id) });
    json(res, 200, processingFor(id, metaOf(success), fetchResultFor(entry, id)));
  }

  /** The finished answer of a call, in its hosted shape. */
  function answerFor(entry: EndpointSpec, id: number, body: Json, params: string[]): unknown {
    const { key: _key, mock: _mock, ...echo } = body;
    switch (entry.response) {
      case 'images':
        return successFor(id, body);
      case 'image':
        // v3 super_resolution: `output` is one URL, not a list.
        return { status: 'success', generationTime: 0.25, id, output: `${base}/output/${sizeOf(body.width)}x${sizeOf(body.height)}/${id}-0.png` };
      case 'list':
        return entry.name === 'finetune_list'
          ? [{ model_id: 'mock-trained', status: 'model_ready', training_id: 'mock-training' }]
          : [{ model_id: 'mock-model', model_name: 'Mock model', model_category: 'stable_diffusion' }, { model_id: 'mock-xl', model_name: 'Mock XL', model_category: 'stable_diffusion_xl' }];
      case 'status':
        if (entry.name === 'fine_tune_status') {
          return { status: 'success', message: 'training_completed', data: { id: params[0] ?? String(id), status: 'training_completed', eta: 0 } };
        }
        return { status: 'success', message: `mock ${entry.name} done`, id, ...Object.fromEntries(params.map((p, i) => [`param_${i}`, p])) };
      case 'object':
        if (entry.name === 'uncensored_chat') {
          const turns = Array.isArray(body.messages) ? body.messages.length : 0;
          return { status: 'success', message: `mock reply to ${turns} message(s)`, id, meta: echo };
        }
        if (entry.name === 'lora_fine_tune' || entry.name === 'fine_tune') {
          return { status: 'success', messege: 'deploying_gpu', data: { training_id: `mock-training-${id}` }, id };
        }
        return { status: 'success', id, link: `${base}/output/64x64/${id}-0.png`, message: `mock ${entry.name}`, meta: echo };
      case 'system-load':
        return { status: 'ok', queue_num: 0, queue_time: 0 };
    }
  }

  /** The job's fetch URL, as the hosted service puts it in fetch_result. */
  function fetchResultFor(entry: EndpointSpec, id: number): string {
    const origin = options.fetchResultOrigin ?? base;
    const via = entry.fetch === null || entry.fetch === 'fetch_result' ? null : byName(entry.fetch);
    return via ? `${origin}${fetchRequest(via, id).path}` : `${origin}/api/v6/llm/fetch/${id}`;
  }

  function answerFetch(res: ServerResponse, id: string): void {
    const job = jobs.get(id);
    if (!job) return json(res, 200, { status: 'error', message: 'Request not found' });
    job.fetchesLeft--;
    if (job.fetchesLeft > 0) return json(res, 200, processingFor(Number(id), metaOf(job.success), job.fetchResult));
    if (job.outcome === 'failed') return json(res, 200, { status: 'failed', id: Number(id), message: 'The mock hosted API failed this job.', output: '' });
    json(res, 200, job.success);
  }

  function processingFor(id: number, meta: Json, fetchResult: string): Json {
    return { status: 'processing', tip: 'mock', eta: 1, messege: PROCESSING_TEXT, fetch_result: fetchResult, id, output: [], meta };
  }

  function successFor(id: number, body: Json): Json {
    const width = sizeOf(body.width);
    const height = sizeOf(body.height);
    const samples = Math.min(4, Math.max(1, Math.round(Number(body.samples ?? 1)) || 1));
    const seed = body.seed === null || body.seed === undefined || body.seed === '' ? Math.floor(Math.random() * 2 ** 32) : Number(body.seed);
    const { key: _key, ...echo } = body;
    const meta: Json = {
      ...echo,
      H: height, W: width, n_samples: samples, seed,
      steps: Number(body.num_inference_steps ?? 30), guidance_scale: Number(body.guidance_scale ?? 7.5),
      model: typeof body.model_id === 'string' ? body.model_id : 'mock-model', vae: 'mock-vae',
      safety_checker: body.safety_checker ?? 'no', negative_prompt: body.negative_prompt ?? '', file_prefix: `mock-${id}`,
    };
    const output = Array.from({ length: samples }, (_, i) => `${base}/output/${width}x${height}/${id}-${i}.png`);
    return { status: 'success', generationTime: 0.25, id, output, meta };
  }

  const pngCache = new Map<string, Uint8Array>();
  function outputPng(width: number, height: number, shade: number): Uint8Array {
    const cacheKey = `${width}x${height}:${shade % 256}`;
    let png = pngCache.get(cacheKey);
    if (!png) {
      const data = new Uint8Array(width * height * 3);
      for (let i = 0; i < data.length; i += 3) {
        data[i] = shade % 256;
        data[i + 1] = 128;
        data[i + 2] = 64;
      }
      png = encode({ width, height, channels: 3, data });
      pngCache.set(cacheKey, png);
    }
    return png;
  }

  base = await listenOnLoopback(server, options.port);

  return {
    url: base,
    requests,
    close: () => closeServer(server, () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    }),
  };
}

function parseBody(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function metaOf(answer: unknown): Json {
  return isObject(answer) && isObject(answer.meta) ? answer.meta : {};
}

/** [echo-key]: the key comes back nested and inside a string, as a careless service might send it. */
function withEchoedKey(answer: unknown, key: unknown): void {
  const echo = { key, note: `sent with ${String(key)}` };
  if (Array.isArray(answer)) answer.push({ debug: echo });
  else if (isObject(answer)) answer.debug = echo;
}

/** The hosted API's sizes arrive as strings or numbers; the mock keeps them sane for its PNGs. */
function sizeOf(v: unknown): number {
  const n = Math.round(Number(v ?? 512));
  return Number.isFinite(n) ? Math.min(1024, Math.max(8, n)) : 512;
}

function send(res: ServerResponse, status: number, body: string | Uint8Array, contentType: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), 'application/json');
}

/** `npx tsx tests/support/mock-hosted-api.ts --port 4398 [--key K]`: serve until killed. */
async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const port = Number(arg('port') ?? process.env.MOCK_API_PORT ?? 4398);
  const api = await startMockHostedApi({ port, key: arg('key') });
  console.log(`Mock hosted API listening on ${api.url}`);
  const stop = () => void api.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
