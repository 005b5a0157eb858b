/**
 * The remote backend: the hosted Stable Diffusion API (stablediffusionapi.com / modelslab) called
 * with the app's request objects unchanged, at the paths of the endpoint table (endpoints.ts). It
 * waits out queued jobs with each call's own fetch rule, retries what is safe to retry, and
 * answers every failure with an error response rather than an exception. DOM-free: fetch,
 * AbortController and setTimeout only, so it runs in a page, a worker or Node alike.
 *
 * The API key travels only in JSON bodies POSTed to the endpoint's own origin: never in a URL,
 * never in a message, never to a fetch_result or redirect on another host.
 */
import { errorResponse, type CallResponse, type ErrorResponse, type FetchResponse, type SuccessResponse } from './responses.ts';
import { snapshotRequest } from './request-snapshot.ts';
import {
  excerpt, normalizeError, readAnswer, type FailedResponse, type HostedAnswer, type PassThroughAnswer, type ProcessingResponse,
  type SystemLoadResponse,
} from './remote-responses.ts';
import {
  byName, ENDPOINTS, fetchCallText, fetchRequest, fillPath, type EndpointName, type EndpointSpec, type ResponseKind,
} from './endpoints.ts';

export type { FailedResponse, ProcessingResponse, SystemLoadResponse } from './remote-responses.ts';

export const DEFAULT_ENDPOINT = 'https://stablediffusionapi.com';
export const MISSING_KEY_MESSAGE = 'An API key is needed for the hosted API (remote mode).';
export const OFFLINE_MESSAGE = 'The hosted API cannot be reached: this device is offline.';

export interface RemoteClientOptions {
  /** Base URL of the hosted service; its origin is the only place the key is sent. */
  endpoint?: string;
  /**
   * The key saved in the app, used when a request carries none of its own. A function is read on
   * every call, so the page can hold the key back until the user confirms an endpoint.
   */
  key: string | (() => string);
  fetch?: typeof fetch;
  /** Limit for each HTTP request, body included. */
  timeoutMs?: number;
  /** How long to keep polling a job the service reports as processing. */
  pollLimitMs?: number;
  /** Extra attempts after a network error or an HTTP 5xx. */
  retries?: number;
  sleep?: (ms: number) => Promise<void>;
  isOnline?: () => boolean;
}

export type GenerationResponse = SuccessResponse | ErrorResponse;
export type SystemLoadAnswer = SystemLoadResponse | ErrorResponse;

/** Bounds on the service's eta, so a bogus eta neither hammers it nor stalls the page. */
const MIN_POLL_MS = 1_000;
const MAX_POLL_MS = 30_000;
const FIRST_BACKOFF_MS = 500;

type Json = Record<string, unknown>;
type Answer = HostedAnswer | PassThroughAnswer;
type Entry = EndpointSpec<EndpointName>;

/** One HTTP exchange: a parsed body, or an error and whether trying again is safe. */
type Exchange = { ok: true; body: unknown } | { ok: false; error: ErrorResponse; retry: boolean };

export class RemoteClient {
  private readonly endpoint: string;
  private readonly origin: string | null;
  private readonly storedKey: () => string;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private readonly pollLimitMs: number;
  private readonly retries: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly isOnline: () => boolean;
  /** Bumped by cancel(): calls started in an older epoch stop at their next step. */
  private epoch = 0;
  private readonly inFlight = new Set<AbortController>();

  constructor(options: RemoteClientOptions) {
    this.endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).trim().replace(/\/+$/, '');
    this.origin = originOf(this.endpoint);
    const key = options.key ?? '';
    this.storedKey = typeof key === 'function' ? () => String(key() ?? '').trim() : () => key.trim();
    // Bound to globalThis: a bare `fetch` stored on an object throws "Illegal invocation" in browsers.
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.pollLimitMs = options.pollLimitMs ?? 10 * 60_000;
    this.retries = Math.max(0, Math.floor(options.retries ?? 2));
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.isOnline = options.isOnline ?? defaultIsOnline;
  }

  text2img(request: unknown): Promise<GenerationResponse> {
    return this.generate('text2img', request);
  }

  img2img(request: unknown): Promise<GenerationResponse> {
    return this.generate('img2img', request);
  }

  inpaint(request: unknown): Promise<GenerationResponse> {
    return this.generate('inpaint', request);
  }

  /**
   * Any call of the endpoint table, POSTed to its path with the request unchanged (path fields such
   * as `training_id` go into the path instead of the body). A processing answer is polled with the
   * call's fetch rule until it settles; a job that fails there answers an error (the call that
   * reads its state still shows the failed object). Answers that are not the generation shape (a
   * list, a record, super_resolution's single URL) come back as the service sent them, keys removed.
   */
  async call(name: string, request?: unknown): Promise<CallResponse> {
    const entry = byName(name);
    if (!entry) return errorResponse(unknownEndpoint(name));
    if (entry.name === 'text2img' || entry.name === 'img2img' || entry.name === 'inpaint') return this.generate(entry.name, request);
    const epoch = this.epoch;
    // Calls that take nothing but the key (system_load, model_list) may be made without a request.
    const snapshot = request === undefined || request === null ? { ok: true as const, fields: {} } : snapshotRequest(request);
    if (!snapshot.ok) return typeof request === 'object' ? snapshot.error : errorResponse(`The ${name} request must be a JSON object.`);
    const key = requestKey(snapshot.fields) || this.storedKey();
    const blocked = this.precheck(key);
    if (blocked) return blocked;
    const waits = entry.fetch !== null;
    const settled = await this.run(entry, snapshot.fields, key, epoch, waits);
    if (waits && isFailed(settled)) return errorResponse(`The hosted API could not complete request ${settled.id}: ${messageText(settled.message)}`);
    return settled;
  }

  /**
   * The current state of an earlier request, as the service reports it (processing included);
   * with `wait`, polls until it is done as the generation calls do.
   */
  async fetch(id: number | string, options: { wait?: boolean; key?: string } = {}): Promise<FetchResponse> {
    const epoch = this.epoch;
    const key = options.key?.trim() || this.storedKey();
    const blocked = this.precheck(key);
    if (blocked) return blocked;
    if ((typeof id !== 'number' && typeof id !== 'string') || String(id).trim() === '') {
      return errorResponse({ id: [MISSING_ID] });
    }
    const entry = endpoint('fetch');
    const answer = generationShape(await this.run(entry, { id }, key, epoch, false), key);
    if (answer.status === 'ok') return unexpectedStatus('ok');
    if (answer.status === 'processing' && options.wait) {
      const settled = generationShape(await this.poll(answer, epoch, key, entry), key);
      return settled.status === 'ok' ? unexpectedStatus('ok') : settled;
    }
    return answer;
  }

  async systemLoad(options: { key?: string } = {}): Promise<SystemLoadAnswer> {
    const epoch = this.epoch;
    const key = options.key?.trim() || this.storedKey();
    const blocked = this.precheck(key);
    if (blocked) return blocked;
    const answer = generationShape(await this.run(endpoint('system_load'), {}, key, epoch, false), key);
    if (answer.status === 'ok' || answer.status === 'error') return answer;
    return unexpectedStatus(answer.status);
  }

  /** Stops every call in progress; they answer with an error (a queued job stays fetchable by id). */
  cancel(): void {
    this.epoch++;
    for (const controller of this.inFlight) controller.abort();
    this.inFlight.clear();
  }

  private async generate(name: 'text2img' | 'img2img' | 'inpaint', request: unknown): Promise<GenerationResponse> {
    const epoch = this.epoch;
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      return errorResponse(`The ${name} request must be a JSON object.`);
    }
    const snapshot = snapshotRequest(request);
    if (!snapshot.ok) return snapshot.error;
    const fields = snapshot.fields;
    // The hosted API authenticates by the body's key: the request's own wins, the saved one fills in.
    const key = requestKey(fields) || this.storedKey();
    const blocked = this.precheck(key);
    if (blocked) return blocked;
    const settled = generationShape(await this.run(endpoint(name), fields, key, epoch, true), key);
    switch (settled.status) {
      case 'success':
      case 'error':
        return settled;
      case 'failed':
        // The generation calls answer success or error only; fetch(id) still shows the failed object.
        return errorResponse(`The hosted API could not complete request ${settled.id}: ${settled.message}`);
      default:
        return unexpectedStatus(settled.status);
    }
  }

  /**
   * Sends one call of the table: its path filled from the request, the rest of the request and the
   * key in the body; with `wait`, a processing answer is polled until it settles.
   */
  private async run(entry: Entry, fields: Json, key: string, epoch: number, wait: boolean): Promise<Answer> {
    const filled = fillPath(entry, fields);
    if (!filled.ok) return errorResponse({ [filled.missing]: [missingField(entry, filled.missing)] });
    const answer = await this.post(`${this.endpoint}${filled.path}`, { ...filled.body, key }, epoch, key, entry.response);
    if (!wait || !isProcessing(answer)) return answer;
    return this.poll(answer, epoch, key, entry);
  }

  /** The reasons not to send anything at all. */
  private precheck(key: string): ErrorResponse | null {
    if (!key) return errorResponse(MISSING_KEY_MESSAGE);
    if (!this.origin) return errorResponse(`The hosted API endpoint "${this.endpoint}" is not an http(s) URL.`);
    if (!this.online()) return errorResponse(OFFLINE_MESSAGE);
    return null;
  }

  private online(): boolean {
    try {
      return this.isOnline();
    } catch {
      return true;
    }
  }

  /**
   * Waits out a processing job until it settles, the poll limit passes, or the call is cancelled.
   * `entry` is the call that queued it: its fetch rule says where to ask, its response kind how to
   * read the answers (a call that reads a job's state follows itself).
   */
  private async poll(first: ProcessingResponse, epoch: number, key: string, entry: Entry): Promise<Answer> {
    const via = entry.fetch === null ? entry : entry.fetch === 'fetch_result' ? null : endpoint(entry.fetch);
    let answer: Answer = first;
    let elapsedMs = 0;
    while (isProcessing(answer)) {
      const job: ProcessingResponse = answer;
      const later = via ? fetchCallText(via, job.id) : 'its fetch_result';
      const still = (why: string) => errorResponse(`${why} Request ${job.id} may still finish on the hosted API; fetch it later with ${later}.`);
      if (elapsedMs >= this.pollLimitMs) {
        return errorResponse(`The hosted API is still processing request ${job.id} after ${Math.round(elapsedMs / 1000)} s; fetch it later with ${later}.`);
      }
      const target = this.pollTarget(job, via);
      if (!target) {
        return errorResponse(`The hosted API is processing request ${job.id} but gave no fetch_result on its own origin to follow (${entry.name} has no fetch call).`);
      }
      const etaMs = Number.isFinite(job.eta) ? job.eta * 1000 : MIN_POLL_MS;
      const waitMs = Math.min(clamp(etaMs, MIN_POLL_MS, MAX_POLL_MS), this.pollLimitMs - elapsedMs);
      await this.sleep(waitMs);
      elapsedMs += waitMs;
      if (epoch !== this.epoch) return still('The request was cancelled.');
      const started = Date.now();
      const next = await this.post(target.url, { ...target.body, key }, epoch, key, entry.response);
      elapsedMs += Date.now() - started;
      // A transport failure while polling must not lose the job: say how to get it back.
      if (!Array.isArray(next) && next.status === 'error' && typeof next.message === 'string' && isTransportMessage(next.message)) return still(next.message);
      answer = next;
    }
    return answer;
  }

  /**
   * Where to ask for a job's state: fetch_result when it is on the endpoint's origin, otherwise the
   * fetch call's own path, so the key stays home. The fetch call's body fields (v4's request_id)
   * go along either way. Null when there is neither.
   */
  private pollTarget(job: ProcessingResponse, via: Entry | null): { url: string; body: Json } | null {
    const request = via ? fetchRequest(via, job.id) : null;
    const body = request?.body ?? {};
    if (job.fetch_result && originOf(job.fetch_result) === this.origin) return { url: job.fetch_result, body };
    return request ? { url: `${this.endpoint}${request.path}`, body } : null;
  }

  /** POSTs with retries on network errors and 5xx, and reads the answer. */
  private async post(url: string, body: Json, epoch: number, key: string, kind: ResponseKind): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      if (epoch !== this.epoch) return errorResponse(CANCELLED);
      if (!this.online()) return errorResponse(OFFLINE_MESSAGE);
      const exchange = await this.exchange(url, body, key);
      if (exchange.ok) return readAnswer(exchange.body, key, kind);
      if (!exchange.retry || attempt >= this.retries) return exchange.error;
      await this.sleep(FIRST_BACKOFF_MS * 2 ** attempt);
    }
  }

  private async exchange(url: string, body: Json, key: string): Promise<Exchange> {
    if (originOf(url) !== this.origin) {
      return { ok: false, retry: false, error: errorResponse('Refused to send the API key to a host other than the hosted API endpoint.') };
    }
    let payload: string;
    try {
      payload = JSON.stringify(body);
    } catch (e) {
      return { ok: false, retry: false, error: errorResponse(`The request cannot be sent as JSON: ${messageOf(e)}`) };
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    this.inFlight.add(controller);
    try {
      const response = await this.fetchFn(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: payload,
        signal: controller.signal,
        // A followed 307/308 would resend the body, key included, wherever the Location points.
        redirect: 'manual',
      });
      const text = await response.text();
      return this.interpret(response, text, key);
    } catch (e) {
      if (timedOut) return { ok: false, retry: false, error: errorResponse(`The hosted API did not answer within ${formatSeconds(this.timeoutMs)} s.`) };
      if (controller.signal.aborted) return { ok: false, retry: false, error: errorResponse(CANCELLED) };
      return { ok: false, retry: true, error: errorResponse(`${NETWORK_PREFIX} ${redact(networkReason(e), key)}.`) };
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  private interpret(response: Response, text: string, key: string): Exchange {
    const status = response.status;
    if (response.type === 'opaqueredirect' || (status >= 300 && status < 400)) {
      return { ok: false, retry: false, error: errorResponse('The hosted API answered with a redirect; it was not followed, so the API key went nowhere else.') };
    }
    let body: unknown;
    let parsed = false;
    try {
      body = JSON.parse(text);
      parsed = true;
    } catch {
      // Not JSON: reported below with the HTTP status and an excerpt.
    }
    const httpLabel = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
    const reported = parsed && isObject(body) && (body.message !== undefined || body.messege !== undefined) ? normalizeError(body).message : null;
    if (status >= 500) {
      const detail = typeof reported === 'string' ? `: ${reported}` : '.';
      return { ok: false, retry: true, error: errorResponse(`The hosted API had a server error (${httpLabel})${detail}`) };
    }
    if (status < 200 || status >= 300) {
      // Hosted errors sometimes come with a 4xx status and the usual error body: keep its message.
      if (reported !== null) return { ok: false, retry: false, error: errorResponse(reported) };
      return { ok: false, retry: false, error: errorResponse(`The hosted API refused the request (${httpLabel}).`) };
    }
    if (!parsed) {
      const snippet = text.trim() ? `: ${excerpt(redact(text, key))}` : ' (empty body).';
      return { ok: false, retry: false, error: errorResponse(`The hosted API sent an answer that is not JSON (${httpLabel})${snippet}`) };
    }
    return { ok: true, body };
  }
}

/** The request's own API key, when it carries a non-empty one (a getter that throws counts as none). */
export function requestKey(request: unknown): string {
  try {
    const key = typeof request === 'object' && request !== null ? (request as { key?: unknown }).key : undefined;
    return typeof key === 'string' ? key.trim() : '';
  } catch {
    return '';
  }
}

function redact(text: string, key: string): string {
  return key ? text.split(key).join('***') : text;
}

const CANCELLED = 'The request was cancelled.';
const MISSING_ID = 'A request id is needed to fetch a result.';

/** A table entry by a name known to be in it (the names used here are checked by the compiler). */
function endpoint(name: EndpointName): Entry {
  const entry = byName(name);
  if (!entry) throw new Error(`The endpoint table has no ${name}.`);
  return entry;
}

function unknownEndpoint(name: string): string {
  return `There is no hosted call named "${name}". Known calls: ${ENDPOINTS.map((e) => e.name).join(', ')}.`;
}

function missingField(entry: Entry, field: string): string {
  if (field === 'id') return MISSING_ID;
  return `The ${field.replace(/_/g, ' ')} is needed: ${entry.name} takes it in its path.`;
}

function isProcessing(answer: Answer): answer is ProcessingResponse {
  return !Array.isArray(answer) && answer.status === 'processing';
}

function isFailed(answer: Answer): answer is FailedResponse {
  return !Array.isArray(answer) && answer.status === 'failed';
}

function messageText(message: unknown): string {
  return typeof message === 'string' ? message : JSON.stringify(message);
}

/**
 * An answer read with a generation kind ('images', 'system-load') is always one of the API's own
 * shapes (readAnswer passes nothing else through for those kinds); this says so to the compiler
 * and turns anything else into an error rather than trusting it.
 */
function generationShape(answer: Answer, key: string): HostedAnswer {
  if (!Array.isArray(answer) && ['success', 'error', 'processing', 'failed', 'ok'].includes(String(answer.status))) return answer as HostedAnswer;
  const text = JSON.stringify(answer) ?? String(answer);
  return errorResponse(`The hosted API sent an answer this app does not understand: ${excerpt(key ? text.split(key).join('***') : text)}`);
}
const NETWORK_PREFIX = 'The hosted API could not be reached:';

function isTransportMessage(message: string): boolean {
  return message.startsWith(NETWORK_PREFIX) || message.startsWith('The hosted API did not answer within') || message === OFFLINE_MESSAGE
    || message === CANCELLED || message.startsWith('The hosted API had a server error');
}

function unexpectedStatus(status: string): ErrorResponse {
  return errorResponse(`The hosted API answered with status "${status}" where it was not expected.`);
}

function defaultIsOnline(): boolean {
  // navigator.onLine is only trustworthy when false; where it is undefined (Node) assume online.
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine !== false;
}

function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.origin : null;
  } catch {
    return null;
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function formatSeconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Node's fetch says only "fetch failed"; the useful part (ECONNRESET, socket closed) is in `cause`. */
function networkReason(e: unknown): string {
  const message = messageOf(e);
  const cause = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  if (cause instanceof Error && cause.message && cause.message !== message) return `${message} (${cause.message})`;
  return message;
}
