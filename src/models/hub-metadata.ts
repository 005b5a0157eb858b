/**
 * A file's size and sha256 as the Hugging Face hub states them. The resolve URL answers with a
 * 302 to a CDN and carries X-Linked-Size / X-Linked-Etag (the LFS object's size and sha256); a
 * browser following the redirect only sees the final response, so its Content-Length and (off
 * Hugging Face) a 64-hex ETag count too, and for Hugging Face URLs the tree API states the sha256.
 * X-Linked-* win where both are visible.
 */
import { isSha256Hex } from './sha256.ts';

export interface ServerFacts {
  size: number | null;
  sha256: string | null;
}

/** The sha256 inside an entity tag such as `"abc…"` or `W/"abc…"`, or null when it is not one. */
export function sha256FromEtag(etag: string | null): string | null {
  if (!etag) return null;
  const bare = etag.trim().replace(/^W\//i, '').replace(/^"(.*)"$/, '$1');
  return isSha256Hex(bare) ? bare.toLowerCase() : null;
}

function nonNegativeInt(value: string | null): number | null {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

export interface ContentRange {
  start: number;
  end: number;
  /** null for "bytes a-b/*". */
  total: number | null;
}

/** Parses `bytes start-end/total`; null for anything else (including the unsatisfied form `bytes * /total`). */
export function parseContentRange(value: string | null): ContentRange | null {
  const m = value?.trim().match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return null;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
}

/** The total size a 416 states (`bytes * /total`), or null. */
export function unsatisfiedRangeTotal(value: string | null): number | null {
  const m = value?.trim().match(/^bytes\s+\*\/(\d+)$/i);
  return m ? Number(m[1]) : null;
}

const HF_RESOLVE = /^https:\/\/(?:huggingface\.co|hf\.co)\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/;

/** Whether the URL is a Hugging Face resolve URL, whose CDN's own ETag is not the file's sha256. */
export function isHuggingFaceUrl(url: string): boolean {
  return HF_RESOLVE.test(url);
}

/**
 * Size and sha256 of a file on the Hugging Face hub from its tree API, which (unlike the resolve
 * URL's X-Linked-* headers, hidden from browsers behind the redirect) a page can read. Null for
 * other URLs or when the API does not answer; one request per folder, cached.
 */
export async function huggingFaceFacts(url: string, fetchFn: typeof fetch, cache = new Map<string, Promise<unknown>>()): Promise<ServerFacts | null> {
  const m = HF_RESOLVE.exec(url);
  if (!m) return null;
  const [, repo, revision, path] = m;
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  const api = `https://huggingface.co/api/models/${repo}/tree/${revision}${dir ? `/${dir}` : ''}`;
  if (!cache.has(api)) cache.set(api, fetchFn(api).then((r) => (r.ok ? r.json() : null)).catch(() => null));
  const listing = await cache.get(api);
  if (!Array.isArray(listing)) return null;
  const entry = listing.find((e: { path?: unknown }) => e.path === decodeURIComponent(path)) as
    | { size?: number; lfs?: { oid?: string; size?: number } } | undefined;
  if (!entry) return null;
  const sha256 = typeof entry.lfs?.oid === 'string' && isSha256Hex(entry.lfs.oid) ? entry.lfs.oid.toLowerCase() : null;
  const size = entry.lfs?.size ?? entry.size;
  return { size: typeof size === 'number' ? size : null, sha256 };
}

/**
 * What a response (HEAD, GET or a 206) says about the whole file. `requestedUrl` decides whether a
 * plain 64-hex ETag may stand for the sha256: not on Hugging Face, whose CDN's ETag can be another hash.
 */
export function serverFacts(response: Response, requestedUrl = ''): ServerFacts {
  const h = response.headers;
  let size = nonNegativeInt(h.get('x-linked-size'));
  if (size === null && response.status === 206) size = parseContentRange(h.get('content-range'))?.total ?? null;
  const encoding = h.get('content-encoding');
  // a compressed body's Content-Length is not the file's size
  if (size === null && response.status === 200 && (!encoding || encoding === 'identity')) size = nonNegativeInt(h.get('content-length'));
  const sha256 = sha256FromEtag(h.get('x-linked-etag')) ?? (isHuggingFaceUrl(requestedUrl) ? null : sha256FromEtag(h.get('etag')));
  return { size, sha256 };
}
