/**
 * A request object read once into plain values. Callers' objects are not trusted: a getter that
 * throws, or a Proxy whose traps throw, must give the API's error shape, never an exception, and
 * nothing after this point reads the caller's object again (so a getter cannot answer differently
 * the second time).
 */
import { errorResponse, type ErrorResponse, type FieldErrors } from './responses.ts';

export type RequestSnapshot = { ok: true; fields: Record<string, unknown> } | { ok: false; error: ErrorResponse };

export function snapshotRequest(request: unknown): RequestSnapshot {
  const fail = (message: string | FieldErrors): RequestSnapshot => ({ ok: false, error: errorResponse(message) });
  if (typeof request !== 'object' || request === null || Array.isArray(request)) return fail('The request must be a JSON object.');
  let names: string[];
  try {
    names = Object.keys(request);
  } catch (e) {
    return fail(`The request could not be read: ${reason(e)}`);
  }
  const values: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  for (const name of names) {
    if (name === '__proto__') continue;
    try {
      values[name] = (request as Record<string, unknown>)[name];
    } catch (e) {
      errors[name] = [`The ${name.replace(/_/g, ' ')} could not be read: ${reason(e)}`];
    }
  }
  return Object.keys(errors).length ? fail(errors) : { ok: true, fields: values };
}

function reason(e: unknown): string {
  try {
    return e instanceof Error ? e.message : String(e);
  } catch {
    return 'it threw something that is not an error';
  }
}
