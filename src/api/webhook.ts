/**
 * Webhook delivery (API.md: when a job with `webhook` finishes, POST the success or failed object
 * plus `track_id` to that URL, best effort).
 *
 * Best effort means: it never throws, and it reports what happened. It sends again (once, after a
 * pause) only when no answer came and the request most likely never got through (a network error:
 * refused, reset, DNS), or when the answer says "try again" (408, 429, 5xx). A timeout is not
 * retried: the request went out and a slow receiver may well be handling it, so a second POST would
 * deliver it twice. Any other answer (400, 404, ...) is the receiver's refusal, and the same body
 * sent again would get the same answer.
 *
 * Every copy of one delivery carries the same id, as the `Idempotency-Key` header and as `webhook_id`
 * in the body, so a receiver can drop a duplicate: a connection can break after the receiver read
 * the request, and a 5xx can come after it acted on it, so a retry is sometimes a second copy.
 *
 * The API key never leaves: `key` is stripped from the payload and from `payload.meta`, the request
 * carries no cookies or HTTP auth (credentials: 'omit'), and a URL with user:password in it is refused.
 *
 * From a page, the receiver must allow CORS for a JSON POST with the `Idempotency-Key` header (both
 * trigger a preflight: `Access-Control-Allow-Headers: Content-Type, Idempotency-Key`); one that does
 * not shows up here as a network error although the hosted service could reach it.
 */

import { plainResponse } from './plain-json.ts';

/** The header that carries the delivery's id (the body has it as `webhook_id`). */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

export interface WebhookOptions {
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default: setTimeout. Injected by tests so a retry costs no time. */
  sleep?: (ms: number) => Promise<void>;
  /** Pause before the retry, in ms (default 2000); doubles for each further retry. */
  retryDelayMs?: number;
  /** Retries after the first attempt (default 1, so at most 2 attempts); only when no answer came (see above). */
  retries?: number;
  /** Per-attempt timeout in ms (default 10000); a timed-out attempt is not retried. */
  timeoutMs?: number;
}

export interface WebhookResult {
  delivered: boolean;
  /** POSTs actually sent (0 when the URL or payload was refused before sending). */
  attempts: number;
  /** The delivery's id, sent with every attempt (absent when nothing was sent). */
  id?: string;
  /** Why the last attempt failed (absent when delivered). */
  error?: string;
}

/**
 * The body the API posts: the result object plus `track_id`, as plain JSON with no key anywhere and
 * inline images as short references (a webhook never receives image bytes it did not ask for).
 */
export function webhookPayload(result: object, trackId: unknown): Record<string, unknown> {
  return { ...plainResponse(result), track_id: typeof trackId === 'string' || typeof trackId === 'number' ? trackId : null };
}

export async function postWebhook(url: string, payload: object, options: WebhookOptions = {}): Promise<WebhookResult> {
  const target = checkUrl(url);
  if (typeof target !== 'object') return { delivered: false, attempts: 0, error: target };

  const id = newDeliveryId();
  let body: string;
  try {
    body = JSON.stringify({ ...withoutKeys(payload), webhook_id: id });
  } catch (e) {
    return { delivered: false, attempts: 0, error: `The payload could not be serialized: ${messageOf(e)}` };
  }

  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const retries = Math.max(0, Math.floor(options.retries ?? 1));
  const delay = Math.max(0, options.retryDelayMs ?? 2000);
  const timeoutMs = Math.max(1, options.timeoutMs ?? 10_000);

  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) await sleep(delay * 2 ** (attempt - 2));
    const outcome = await postOnce(doFetch, target.href, body, id, timeoutMs);
    if (outcome.delivered) return { delivered: true, attempts: attempt, id };
    if (!outcome.retry || attempt > retries) return { delivered: false, attempts: attempt, id, error: outcome.error };
  }
}

type Outcome = { delivered: true } | { delivered: false; retry: boolean; error: string };

/** One POST, and whether sending it again could help without delivering it twice. */
async function postOnce(doFetch: typeof fetch, url: string, body: string, id: string, timeoutMs: number): Promise<Outcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await doFetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', [IDEMPOTENCY_HEADER]: id },
      body,
      credentials: 'omit',
      signal: controller.signal,
    });
    // The body is never read: cancel it so the connection is released.
    await response.body?.cancel().catch(() => undefined);
    if (response.ok) return { delivered: true };
    return { delivered: false, retry: saysTryAgain(response.status), error: `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}` };
  } catch (e) {
    if (controller.signal.aborted) {
      return { delivered: false, retry: false, error: `No answer within ${timeoutMs} ms; not sent again, as the receiver may have it.` };
    }
    return { delivered: false, retry: true, error: `Network error: ${messageOf(e)}` };
  } finally {
    clearTimeout(timer);
  }
}

/** 408, 429 and 5xx ask the client to come back later; other answers would be the same the second time. */
function saysTryAgain(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** A random UUID v4. */
function newDeliveryId(): string {
  const c = globalThis.crypto;
  // randomUUID exists only in secure contexts; the app served over plain http on a LAN still has getRandomValues.
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function checkUrl(url: string): URL | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `The webhook URL is not a valid URL: ${JSON.stringify(String(url))}`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `The webhook URL must be http or https, not ${parsed.protocol.replace(/:$/, '')}.`;
  }
  if (parsed.username || parsed.password) return 'The webhook URL must not contain credentials.';
  return parsed;
}

/** A copy without `key` at the top level and in `meta`; the caller's object is left alone. */
function withoutKeys(payload: object): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...payload };
  delete copy.key;
  if (copy.meta && typeof copy.meta === 'object' && !Array.isArray(copy.meta)) {
    const meta: Record<string, unknown> = { ...copy.meta };
    delete meta.key;
    copy.meta = meta;
  }
  return copy;
}

function messageOf(e: unknown): string {
  if (e instanceof Error) {
    // Node's fetch hides the real reason (ECONNREFUSED...) in `cause`.
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    return `${e.message}${cause}`;
  }
  return String(e);
}
