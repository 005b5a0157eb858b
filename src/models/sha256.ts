/**
 * sha256 in two forms: one-shot over bytes in memory (WebCrypto, fast, present in browsers,
 * workers and Node 20), and incremental (@noble/hashes) for files that are only ever read chunk
 * by chunk, since WebCrypto cannot hash a stream.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export interface IncrementalSha256 {
  update(bytes: Uint8Array): void;
  /** Lower-case hex; the hasher is finished afterwards. */
  hex(): string;
}

export function createSha256(): IncrementalSha256 {
  const hash = sha256.create();
  return {
    update: (bytes) => void hash.update(bytes),
    hex: () => bytesToHex(hash.digest()),
  };
}

/** A 64-hex-digit string is the only form a sha256 takes in hub headers and catalogues. */
export function isSha256Hex(value: string): boolean {
  return /^[0-9a-f]{64}$/i.test(value);
}
