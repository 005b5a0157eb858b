/**
 * A stand-in for the hosted Stable Diffusion API (v3) on loopback, for unit and browser tests.
 * Its behaviour is picked by markers in the request's prompt, so a page can drive every case
 * through the ordinary calls:
 *   (none)            immediate success; outputs are PNGs this server serves, meta echoes the request
 *   [processing:N]    processing (eta 1), success after N fetches
 *   [failed]          processing, then fetch answers {status:'failed', ...}
 *   [error:string]    {status:'error', message:'...'}       [error:fields]    message as a field map
 *   [messege:string]  the same with the misspelt key        [messege:fields]  likewise
 *   [slow:MS]         answers after MS ms                    [drop]            destroys the socket unanswered
 *   [5xx:N]           HTTP 503 the first N times this prompt arrives, then as without the marker
 *   [http:CODE]       HTTP CODE with a plain-text body       [html]            HTTP 200 with an HTML page
 *   [unexpected]      HTTP 200 JSON without a status         [redirect]        HTTP 307 to another host
 * A wrong or missing key answers {status:'error', message:'Invalid API key'}.
 *
 * Run directly (`npx tsx tests/support/mock-hosted-api.ts --port 4398 [--key K]`) it serves until killed.
 */
import { closeServer, listenOnLoopback, readBody } from './http-server.ts';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { encode } from 'fast-png';

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
  success: Record<string, unknown>;
}

type Json = Record<string, unknown>;

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
    if (req.method !== 'POST' || !pathname.startsWith('/api/v3/')) return json(res, 404, { status: 'error', message: `No route ${req.method} ${pathname}` });
    if (!isObject(body)) return json(res, 400, { status: 'error', message: 'The body must be a JSON object.' });
    if (body.key !== validKey) return json(res, 200, { status: 'error', message: 'Invalid API key' });

    const route = pathname.slice('/api/v3/'.length);
    if (route === 'system_load') return json(res, 200, { status: 'ok', queue_num: 0, queue_time: 0 });
    const fetchMatch = /^fetch\/([^/]+)$/.exec(route);
    if (fetchMatch) return answerFetch(res, decodeURIComponent(fetchMatch[1]!));
    if (route === 'text2img' || route === 'img2img' || route === 'inpaint') return answerGeneration(req, res, route, body);
    return json(res, 404, { status: 'error', message: `Unknown endpoint ${route}` });
  }

  function answerGeneration(req: IncomingMessage, res: ServerResponse, route: string, body: Json): void {
    const prompt = typeof body.prompt === 'string' ? body.prompt : '';
    const slow = /\[slow:(\d+)\]/.exec(prompt);
    const answer = () => generation(req, res, route, body, prompt);
    if (!slow) return answer();
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer();
    }, Number(slow[1]));
    timers.add(timer);
  }

  function generation(req: IncomingMessage, res: ServerResponse, route: string, body: Json, prompt: string): void {
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
      res.writeHead(307, { ...CORS_HEADERS, Location: `http://elsewhere.invalid/api/v3/${route}` });
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
    const success = successFor(id, body);
    const processing = /\[processing:(\d+)\]/.exec(prompt);
    const failed = prompt.includes('[failed]');
    if (!processing && !failed) {
      // As the hosted API does, a finished job can be fetched again by id.
      jobs.set(String(id), { fetchesLeft: 0, outcome: 'success', success });
      return json(res, 200, success);
    }
    jobs.set(String(id), { fetchesLeft: failed ? 1 : Math.max(1, Number(processing![1])), outcome: failed ? 'failed' : 'success', success });
    json(res, 200, processingFor(id, success.meta as Json));
  }

  function answerFetch(res: ServerResponse, id: string): void {
    const job = jobs.get(id);
    if (!job) return json(res, 200, { status: 'error', message: 'Request not found' });
    job.fetchesLeft--;
    if (job.fetchesLeft > 0) return json(res, 200, processingFor(Number(id), job.success.meta as Json));
    if (job.outcome === 'failed') return json(res, 200, { status: 'failed', id: Number(id), message: 'The mock hosted API failed this job.', output: '' });
    json(res, 200, job.success);
  }

  function processingFor(id: number, meta: Json): Json {
    const origin = options.fetchResultOrigin ?? base;
    return { status: 'processing', tip: 'mock', eta: 1, messege: PROCESSING_TEXT, fetch_result: `${origin}/api/v3/fetch/${id}`, id, output: [], meta };
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
