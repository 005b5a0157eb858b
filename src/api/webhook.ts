/**
 * Webhook delivery (API.md: when a job with `webhook` finishes, POST the success or failed object
 * plus `track_id` to that URL, best effort).
 *
 * Best effort means: it never throws, it tries once more after a pause on a network error, a
 * timeout or a non-2xx answer, and it reports what happened. The API key never leaves: `key` is
 * stripped from the payload and from `payload.meta`, the request carries no cookies or HTTP auth
 * (credentials: 'omit'), and a URL with user:password in it is refused.
 *
 * From a page, the receiver must allow CORS for a JSON POST (it triggers a preflight); one that
 * does not shows up here as a network error although the hosted service could reach it.
 */

import { plainResponse } from './plain-json.ts';

export interface WebhookOptions {
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default: setTimeout. Injected by tests so a retry costs no time. */
  sleep?: (ms: number) => Promise<void>;
  /** Pause before the retry, in ms (default 2000); doubles for each further retry. */
  retryDelayMs?: number;
  /** Retries after the first attempt (default 1, so at most 2 attempts). */
  retries?: number;
  /** Per-attempt timeout in ms (default 10000). */
  timeoutMs?: number;
}

export interface WebhookResult {
  delivered: boolean;
  /** POSTs actually sent (0 when the URL or payload was refused before sending). */
  attempts: number;
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

  let body: string;
  try {
    body = JSON.stringify(withoutKeys(payload));
  } catch (e) {
    return { delivered: false, attempts: 0, error: `The payload could not be serialized: ${messageOf(e)}` };
  }

  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const retries = Math.max(0, Math.floor(options.retries ?? 1));
  const delay = Math.max(0, options.retryDelayMs ?? 2000);
  const timeoutMs = Math.max(1, options.timeoutMs ?? 10_000);

  let error = '';
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    if (attempt > 1) await sleep(delay * 2 ** (attempt - 2));
    error = await postOnce(doFetch, target.href, body, timeoutMs);
    if (!error) return { delivered: true, attempts: attempt };
  }
  return { delivered: false, attempts: retries + 1, error };
}

/** One POST; returns '' when delivered, else why not. */
async function postOnce(doFetch: typeof fetch, url: string, body: string, timeoutMs: number): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await doFetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      credentials: 'omit',
      signal: controller.signal,
    });
    // The body is never read: cancel it so the connection is released.
    await response.body?.cancel().catch(() => undefined);
    return response.ok ? '' : `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  } catch (e) {
    return controller.signal.aborted ? `No answer within ${timeoutMs} ms.` : `Network error: ${messageOf(e)}`;
  } finally {
    clearTimeout(timer);
  }
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
