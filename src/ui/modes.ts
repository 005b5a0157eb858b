/**
 * The form's modes and the hosted calls they make: which call a mode runs, how its answer reaches
 * the page, and which mode a stored result came from. DOM-free.
 */
import type { Client } from '../api/create-client.ts';
import type { EndpointName } from '../api/endpoints.ts';
import { endpointOf } from '../api/request-export.ts';
import type { FieldErrors, GenerationResponse } from '../api/responses.ts';
import type { Mode } from './contracts.ts';

export const MODES: readonly Mode[] = ['text2img', 'img2img', 'inpaint', 'outpaint', 'upscale'];

/** The hosted call a mode makes (the endpoint table's name, for "copy as API request"). */
export function callOf(mode: Mode): EndpointName {
  return mode === 'upscale' ? 'super_resolution' : mode;
}

export function modeLabel(mode: Mode): string {
  switch (mode) {
    case 'text2img': return 'text to image';
    case 'img2img': return 'image to image';
    case 'inpaint': return 'inpaint';
    case 'outpaint': return 'outpaint';
    case 'upscale': return 'upscale';
  }
}

const given = (v: unknown) => typeof v === 'string' && v.trim() !== '';

/**
 * Which mode a stored result came from. Local results say it in meta (an upscale reports its input
 * size, an outpaint its overlap); results from the hosted service are judged by the request's fields.
 */
export function modeOf(request: Record<string, unknown>, meta: Record<string, unknown> = {}): Mode {
  if (meta.input_W !== undefined || (request.scale !== undefined && !given(request.prompt))) return 'upscale';
  if (meta.overlap_width !== undefined || request.overlap_width !== undefined || given(request.image)) return 'outpaint';
  // endpointOf may learn the table's other names; any it names that the form has no mode for read as text2img.
  const call: string = endpointOf(request, meta);
  if (call === 'super_resolution') return 'upscale';
  return MODES.includes(call as Mode) ? (call as Mode) : 'text2img';
}

/**
 * An answer of any call in the generation shape the page shows: super_resolution's hosted answer
 * carries `output` as one URL string, and a job that failed is an error to the page.
 */
export function asGenerationResponse(answer: unknown): GenerationResponse {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    return { status: 'error', message: 'The call gave no answer the page can show.' };
  }
  const r = answer as Record<string, unknown>;
  if (r.status === 'success') {
    const output = typeof r.output === 'string' ? [r.output] : Array.isArray(r.output) ? r.output.filter((u): u is string => typeof u === 'string') : [];
    const meta = typeof r.meta === 'object' && r.meta !== null ? (r.meta as Record<string, unknown>) : {};
    return { status: 'success', id: Number(r.id), generationTime: Number(r.generationTime ?? 0), output, meta };
  }
  if (r.status === 'processing') return answer as GenerationResponse;
  const message = r.message;
  // A field map stays one (the page lists its messages); anything else is said as text.
  if (typeof message === 'object' && message !== null && !Array.isArray(message)) return { status: 'error', message: message as FieldErrors };
  return { status: 'error', message: typeof message === 'string' && message ? message : `The call ended as "${String(r.status)}".` };
}

/** Runs a mode's call on the client. */
export async function runMode(client: Client, mode: Mode, request: Record<string, unknown>): Promise<GenerationResponse> {
  switch (mode) {
    case 'text2img':
    case 'img2img':
    case 'inpaint':
      return client[mode](request);
    case 'outpaint':
      return asGenerationResponse(await client.outpaint(request));
    case 'upscale':
      return asGenerationResponse(await client.superResolution(request));
  }
}
