/** The hosted API's response objects (API.md), built in one place. */

export type FieldErrors = Record<string, string[]>;

export interface ErrorResponse {
  status: 'error';
  message: string | FieldErrors;
}

export interface SuccessResponse {
  status: 'success';
  generationTime: number;
  id: number;
  output: string[];
  meta: Record<string, unknown>;
}

/** The job is queued or running; fetch it after `eta` seconds (`fetch_result` says how). */
export interface ProcessingResponse {
  status: 'processing';
  id: number | string;
  eta: number;
  fetch_result?: string;
  messege?: string;
  message?: string;
  output: unknown[];
  meta?: Record<string, unknown>;
}

/**
 * What fetch answers for a job that failed: `{status:"failed", id, message, output:""}`. The message
 * is the field map when a field was at fault (an init image that could not be fetched), as in errors.
 */
export interface FailedResponse {
  status: 'failed';
  id: number | string;
  message: string | FieldErrors;
  output: '' | unknown[];
  meta?: Record<string, unknown>;
}

export interface SystemLoadResponse {
  status: 'ok';
  queue_num: number;
  queue_time: number;
}

export type ApiResponse = SuccessResponse | ErrorResponse;

/**
 * An answer of the hosted service that is not the generation shape (a training state, a crop's
 * URL, a chat reply, super_resolution's single-URL success): its own fields, passed through as
 * plain JSON with every `key` removed.
 */
export interface HostedObject {
  status?: string;
  meta?: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * What any call of the endpoint table may answer: the API's own shapes, the service's object, or
 * a list (model_list, finetune_list).
 */
export type CallResponse = SuccessResponse | ErrorResponse | ProcessingResponse | FailedResponse | SystemLoadResponse | HostedObject | unknown[];
/** What a generation call may answer: done, failed validation, or (instant_response) still processing. */
export type GenerationResponse = SuccessResponse | ErrorResponse | ProcessingResponse;
export type FetchResponse = SuccessResponse | ErrorResponse | ProcessingResponse | FailedResponse;

/** The hosted API's "try later" answer; it really spells `messege`, so both are sent. */
export function processingResponse(id: number | string, eta: number, fetchResult: string, meta: Record<string, unknown>): ProcessingResponse {
  const note = 'Try to fetch request after given estimated time';
  return { status: 'processing', id, eta: Math.max(1, Math.round(eta)), fetch_result: fetchResult, messege: note, message: note, output: [], meta };
}

export function errorResponse(message: string | FieldErrors): ErrorResponse {
  return { status: 'error', message };
}

export function fieldError(field: string, message: string): ErrorResponse {
  return errorResponse({ [field]: [message] });
}

export function successResponse(id: number, generationTime: number, output: string[], meta: Record<string, unknown>): SuccessResponse {
  return { status: 'success', generationTime: Math.round(generationTime * 1000) / 1000, id, output, meta };
}
