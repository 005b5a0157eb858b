/**
 * What a model download can end with. Every failure is a ModelFileError with a message meant for
 * the user; a pause (or cancel) is not a failure, so DownloadPaused stands apart and carries the
 * name "AbortError", as fetch's own abort does, for code that only checks names.
 */
import { formatBytes } from './quota.ts';

export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

/** HTTP or network failure; `status` is the HTTP status, absent when no response came. Stored chunks are kept. */
export class DownloadError extends ModelFileError {
  override name = 'DownloadError';
  constructor(message: string, readonly status?: number, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A file's size or sha256 did not match; its stored chunks were discarded. */
export class IntegrityError extends ModelFileError {
  override name = 'IntegrityError';
  constructor(message: string, readonly modelId: string, readonly path: string) {
    super(message);
  }
}

/** The bytes still to download do not fit the storage the browser grants this site. */
export class QuotaError extends ModelFileError {
  override name = 'QuotaError';
  constructor(message: string, readonly neededBytes: number, readonly availableBytes: number | null) {
    super(message);
  }

  static forModel(modelId: string, needed: number, available: number, quota: number, usage: number): QuotaError {
    return new QuotaError(
      `Not enough storage for ${modelId}: ${formatBytes(needed)} still to download, but only ${formatBytes(available)} ` +
        `is free for this site (quota ${formatBytes(quota)}, ${formatBytes(usage)} used). ` +
        'Delete cached models or other site data, then try again.',
      needed,
      available,
    );
  }
}

/** Which part of a model a file belongs to, for messages: "unet" for "unet/model.onnx". */
export function componentOf(path: string): string {
  return path.includes('/') ? path.slice(0, path.indexOf('/')) : 'model';
}

/**
 * A stored file could not be loaded (ORT's "protobuf parsing failed", our reader's "unsupported wire
 * type") and its bytes no longer match the checksum they were verified with: storage went wrong.
 * That file alone was discarded; the next load downloads it again.
 */
export class CorruptCacheError extends ModelFileError {
  override name = 'CorruptCacheError';
  constructor(readonly modelId: string, readonly paths: string[], cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const files = paths.map((p) => `${p} (${componentOf(p)})`).join(', ');
    super(
      `${modelId}: the stored copy of ${files} was damaged in this browser's storage and could not be loaded (${why}). ` +
        `${paths.length === 1 ? 'It was' : 'They were'} discarded and will be downloaded again.`,
      { cause },
    );
  }
}

/**
 * A file that is not a valid ONNX graph although its bytes match the checksum it was verified with:
 * the file itself is broken where it is published. Fetching it again would fetch the same bytes,
 * so nothing is refetched; the message says so.
 */
export class BrokenModelFileError extends ModelFileError {
  override name = 'BrokenModelFileError';
  constructor(readonly modelId: string, readonly path: string, sha256: string | null, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const sum = sha256 ? ` (sha256 ${sha256})` : '';
    super(
      `${modelId}: ${path} (${componentOf(path)}) is not a valid ONNX model (${why}), although it matches the checksum it was downloaded with${sum}. ` +
        'The file is broken in the repository it comes from, so it was not downloaded again; use another copy of this model.',
      { cause },
    );
  }
}

/** Browsers cannot allocate one ArrayBuffer much over 2 GiB, and a model file is handed to ORT as one. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

/** A single file over MAX_FILE_BYTES: it could be downloaded but never loaded, so it is refused first. */
export class FileTooLargeError extends ModelFileError {
  override name = 'FileTooLargeError';
  constructor(readonly modelId: string, readonly path: string, readonly size: number) {
    super(
      `${modelId}: ${path} is ${formatBytes(size)} in one file. A browser cannot hold more than 2 GB in one buffer, so it could never be loaded; ` +
        'nothing was downloaded. Use an export whose weights are split into external-data shards below 2 GB (model.onnx_data, model.onnx_data_1, …).',
    );
  }
}

/** The download stopped because its signal aborted (pause) or cancel() was called; stored chunks stay unless cancelled. */
export class DownloadPaused extends Error {
  override name = 'AbortError';
  constructor(readonly modelId: string, readonly cancelled = false) {
    super(cancelled ? `The download of ${modelId} was cancelled` : `The download of ${modelId} was paused; it resumes where it stopped`);
  }
}
