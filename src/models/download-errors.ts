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

/** The cached copy of a model could not be loaded (e.g. ORT's "protobuf parsing failed"); its files were marked bad. */
export class CorruptCacheError extends ModelFileError {
  override name = 'CorruptCacheError';
  constructor(readonly modelId: string, readonly paths: string[], cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `The cached copy of ${modelId} could not be loaded (${why}). ` +
        `${paths.length === 1 ? `${paths[0]} was` : `Its files (${paths.length}) were`} discarded and will be downloaded again.`,
      { cause },
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
