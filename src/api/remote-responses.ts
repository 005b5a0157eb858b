/**
 * Reads the hosted API's answers into the app's response objects. The hosted service is loose
 * about its own shapes (it spells `messege`, sends ids as numbers or strings, leaves meta out),
 * so everything here is checked, never trusted, and anything unexpected becomes an error response.
 */
import {
  errorResponse, type ErrorResponse, type FailedResponse, type FieldErrors, type HostedObject, type ProcessingResponse, type SuccessResponse,
  type SystemLoadResponse,
} from './responses.ts';
import type { ResponseKind } from './endpoints.ts';
import { plainObject, toPlainJson } from './plain-json.ts';

export type { FailedResponse, ProcessingResponse, SystemLoadResponse } from './responses.ts';

export type HostedAnswer = SuccessResponse | ErrorResponse | ProcessingResponse | FailedResponse | SystemLoadResponse;
/** An answer read for a call whose result is not the generation shape: the service's object or list. */
export type PassThroughAnswer = HostedObject | unknown[];

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short, single-line excerpt of a body for an error message. */
export function excerpt(text: string, max = 160): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

function isFieldErrors(v: unknown): v is FieldErrors {
  return isObject(v) && Object.values(v).every((reasons) => Array.isArray(reasons) && reasons.every((r) => typeof r === 'string'));
}

/** The hosted service's message, from `message` or its misspelt `messege`, kept as a string or a field map. */
export function hostedMessage(body: Json): string | FieldErrors | undefined {
  for (const value of [body.message, body.messege]) {
    if (typeof value === 'string' && value.trim() !== '') return value;
    if (isFieldErrors(value)) return value;
    // A field map whose reasons are single strings rather than lists: keep the fields, fix the shape.
    if (isObject(value)) {
      const map: FieldErrors = {};
      for (const [field, reasons] of Object.entries(value)) {
        map[field] = (Array.isArray(reasons) ? reasons : [reasons]).map((r) => (typeof r === 'string' ? r : JSON.stringify(r)));
      }
      return map;
    }
  }
  return undefined;
}

export function normalizeError(body: Json): ErrorResponse {
  return errorResponse(hostedMessage(body) ?? 'The hosted API reported an error without saying why.');
}

/** Classifies a parsed body; `key` is the caller's API key, stripped from anything echoed back. */
export function readHostedAnswer(received: unknown, key: string): HostedAnswer {
  if (!isObject(received) || typeof received.status !== 'string') return unexpected(received, key);
  // Plain JSON with every `key` field dropped at any depth: the key must never reach the page's
  // output, the history or a log, even if the service echoes it somewhere nested.
  const body = plainObject(received, { redact: key });
  switch (body.status) {
    case 'success': {
      if (!Array.isArray(body.output)) return unexpected(body, key);
      const meta = isObject(body.meta) ? { ...body.meta } : {};
      meta.runtime = 'remote';
      return { ...body, meta } as unknown as SuccessResponse;
    }
    case 'processing': {
      if (!isId(body.id)) return unexpected(body, key);
      return {
        ...body,
        status: 'processing',
        id: body.id,
        eta: Number(body.eta),
        fetch_result: typeof body.fetch_result === 'string' ? body.fetch_result : undefined,
        output: Array.isArray(body.output) ? body.output : [],
      } as ProcessingResponse;
    }
    case 'failed': {
      const message = hostedMessage(body);
      return {
        ...body,
        status: 'failed',
        id: isId(body.id) ? body.id : '',
        message: message ?? 'The hosted API failed the request.',
        output: Array.isArray(body.output) ? body.output : '',
      } as FailedResponse;
    }
    case 'error':
      return normalizeError(body);
    case 'ok':
      return { ...body, status: 'ok', queue_num: Number(body.queue_num ?? 0), queue_time: Number(body.queue_time ?? 0) } as SystemLoadResponse;
    default:
      return unexpected(body, key);
  }
}

function isId(v: unknown): v is number | string {
  return (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.trim() !== '');
}

function unexpected(body: unknown, key: string): ErrorResponse {
  let text: string;
  try {
    text = JSON.stringify(body) ?? String(body);
  } catch {
    text = String(body);
  }
  if (key) text = text.split(key).join('***');
  return errorResponse(`The hosted API sent an answer this app does not understand: ${excerpt(text)}`);
}

/**
 * Reads an answer for a call whose response kind the endpoint table gives. The generation shapes
 * ('images', 'system-load') are read strictly, as readHostedAnswer does; the others pass through
 * as plain JSON (with the same key stripping and redaction) instead of being rejected for not
 * looking like a text2img answer. Processing, failed and error answers are read the same way for
 * every kind, so polling and error normalization work for every call.
 */
export function readAnswer(received: unknown, key: string, kind: ResponseKind): HostedAnswer | PassThroughAnswer {
  if (kind === 'images' || kind === 'system-load') return readHostedAnswer(received, key);
  if (Array.isArray(received)) {
    if (kind === 'image') return unexpected(received, key);
    const list = toPlainJson(received, { redact: key });
    return Array.isArray(list) ? list : [];
  }
  if (!isObject(received)) return unexpected(received, key);
  const status = received.status;
  if (status === 'processing' || status === 'failed' || status === 'error') return readHostedAnswer(received, key);
  const body = plainObject(received, { redact: key });
  if (kind === 'image') {
    // super_resolution v3 answers one URL string; its v6 successor a list of them: both are one image's answer.
    const output = body.output;
    const isUrls = typeof output === 'string' || (Array.isArray(output) && output.every((u) => typeof u === 'string'));
    if (status !== 'success' || !isUrls) return unexpected(body, key);
    return { ...body, meta: { ...(isObject(body.meta) ? body.meta : {}), runtime: 'remote' } };
  }
  return body as HostedObject;
}
