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

export type ApiResponse = SuccessResponse | ErrorResponse;

export function errorResponse(message: string | FieldErrors): ErrorResponse {
  return { status: 'error', message };
}

export function fieldError(field: string, message: string): ErrorResponse {
  return errorResponse({ [field]: [message] });
}

export function successResponse(id: number, generationTime: number, output: string[], meta: Record<string, unknown>): SuccessResponse {
  return { status: 'success', generationTime: Math.round(generationTime * 1000) / 1000, id, output, meta };
}
