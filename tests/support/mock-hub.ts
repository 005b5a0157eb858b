/**
 * A stand-in for huggingface.co on loopback, for the model store's unit and browser tests.
 *
 *   GET/HEAD /<repo>/resolve/main/<path>   302 to /cdn/<sha256>?file=<repo>/<path>, with X-Linked-Size,
 *                                          X-Linked-Etag ("<sha256>") and Location, as the hub answers for LFS files
 *   GET/HEAD /cdn/<sha256>?file=…          the bytes: ETag "<sha256>", Accept-Ranges, Content-Length;
 *                                          a Range "bytes=a-" or "bytes=a-b" gets 206 + Content-Range (416 past the end)
 *   GET /api/models/<repo>/tree/<rev>[/<dir>][?recursive=true]
 *                                          the tree listing: files with size and lfs {oid: sha256, size}
 *   OPTIONS *                              CORS preflight allowing Range
 * Every answer carries Access-Control-Allow-Origin * and exposes the headers the store reads.
 *
 * Faults (per file path, set with setFault or POST /_fault from a browser test):
 *   cutAfter N        the connection is destroyed after N body bytes of a response, cutTimes times (default 1; -1 = always)
 *   corruptAt I       byte I of the file (absolute offset) is flipped in every body that carries it
 *   bytesPerSecond B  the body is throttled to about B bytes per second
 *   status S          the resolve URL answers S, statusTimes times (default 1; -1 = always)
 *   ignoreRange       Range requests get 200 and the whole file
 * Control endpoints: POST /_fault {path, repo?, ...fault} (or {path, clear: true}), DELETE /_fault (all),
 * GET /_requests (the log), DELETE /_requests, GET /_manifest ({repo: {files: [{path, size, sha256, url}]}}).
 *
 * Run directly (`npx tsx tests/support/mock-hub.ts --port 4397`) it generates the tiny model sets
 * (tools/generate-tiny-models.ts) and serves each as repo `test/<set>` (e.g. test/tiny-sd), plus a
 * 24 MiB synthetic file `blob.bin` in repo `test/big`, `test/tiny-sd-big` (tiny-sd plus a 24 MiB
 * `unet/model.onnx_data`) for resume tests, and tiny replicas of the catalogue's real repositories
 * under their real names (tools/tiny-models/replicas.ts), until killed.
 */
import { closeServer, listenOnLoopback, readBody } from './http-server.ts';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface HubFault {
  /** Only this repo's file of that path; any repo when absent. */
  repo?: string;
  cutAfter?: number;
  /** Responses to cut; -1 = every one. Default 1. */
  cutTimes?: number;
  corruptAt?: number;
  bytesPerSecond?: number;
  status?: number;
  /** Responses answered with `status`; -1 = every one. Default 1. */
  statusTimes?: number;
  ignoreRange?: boolean;
}

export interface HubRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  kind: 'resolve' | 'cdn' | 'control' | 'other';
  /** "<repo>/<path>" for resolve and cdn requests. */
  file: string | null;
  range: string | null;
  status: number;
}

export interface MockHubOptions {
  /** Files of `repo` (default "test/model"), by path inside the repository. */
  files?: Record<string, Uint8Array>;
  repo?: string;
  /** More repositories: repo id -> path -> bytes. */
  repos?: Record<string, Record<string, Uint8Array>>;
  /** 0 (the default) picks a free port. */
  port?: number;
}

export interface MockHub {
  url: string;
  close(): Promise<void>;
  requests: HubRequest[];
  /** Sets (or with null clears) the fault of a file path. */
  setFault(filePath: string, fault: HubFault | null): void;
  clearFaults(): void;
  /** The resolve URL of a file, as a catalogue would list it. */
  resolveUrl(filePath: string, repo?: string): string;
  /** The repository root URL (ending in "/"), usable as a ModelSource's baseUrl. */
  baseUrl(repo?: string): string;
  manifest(): Record<string, { files: { path: string; size: number; sha256: string; url: string }[] }>;
}

interface HostedFile {
  repo: string;
  path: string;
  bytes: Uint8Array;
  sha256: string;
}

const EXPOSED = 'X-Linked-Size, X-Linked-Etag, ETag, Content-Length, Content-Range, Accept-Ranges, Location';
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': EXPOSED,
};
const PREFLIGHT = {
  ...CORS,
  'Access-Control-Allow-Methods': 'GET, HEAD, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Range, Content-Type',
  'Access-Control-Max-Age': '600',
};

const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** "/test/tiny-sd/resolve/main/unet/model.onnx" -> repo and path. */
function parseResolve(pathname: string): { repo: string; path: string } | null {
  const m = /^\/(.+?)\/resolve\/main\/(.+)$/.exec(pathname);
  return m ? { repo: decodeURIComponent(m[1]), path: decodeURIComponent(m[2]) } : null;
}

/** The one range of a "bytes=a-" / "bytes=a-b" header; null when absent or not of that form. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = header ? /^bytes=(\d+)-(\d*)$/.exec(header.trim()) : null;
  if (!m) return null;
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startMockHub(options: MockHubOptions = {}): Promise<MockHub> {
  const defaultRepo = options.repo ?? 'test/model';
  const hosted = new Map<string, HostedFile>();
  const add = (repo: string, files: Record<string, Uint8Array>) => {
    for (const [p, bytes] of Object.entries(files)) hosted.set(`${repo}/${p}`, { repo, path: p, bytes, sha256: sha256Of(bytes) });
  };
  add(defaultRepo, options.files ?? {});
  for (const [repo, files] of Object.entries(options.repos ?? {})) add(repo, files);

  const faults = new Map<string, HubFault>();
  const requests: HubRequest[] = [];
  let base = '';

  const faultFor = (file: HostedFile): HubFault | null => {
    const fault = faults.get(file.path);
    return fault && (fault.repo === undefined || fault.repo === file.repo) ? fault : null;
  };

  function setFault(filePath: string, fault: HubFault | null): void {
    if (fault) faults.set(filePath, { ...fault });
    else faults.delete(filePath);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://hub.invalid');
    const method = req.method ?? 'GET';
    const entry: HubRequest = { method, url: req.url ?? '/', kind: 'other', file: null, range: req.headers.range ?? null, status: 0 };
    const log = (status: number) => {
      entry.status = status;
      requests.push(entry);
    };
    if (method === 'OPTIONS') {
      res.writeHead(204, PREFLIGHT).end();
      return log(204);
    }
    if (url.pathname.startsWith('/_')) {
      entry.kind = 'control';
      return control(req, res, method, url.pathname, log);
    }
    const resolved = parseResolve(url.pathname);
    if (resolved && (method === 'GET' || method === 'HEAD')) {
      entry.kind = 'resolve';
      entry.file = `${resolved.repo}/${resolved.path}`;
      const file = hosted.get(entry.file);
      if (!file) {
        res.writeHead(404, { ...CORS, 'Content-Type': 'text/plain', 'X-Error-Code': 'EntryNotFound' }).end(method === 'HEAD' ? undefined : 'Entry not found');
        return log(404);
      }
      const fault = faultFor(file);
      if (fault?.status !== undefined && (fault.statusTimes ?? 1) !== 0) {
        if ((fault.statusTimes ?? 1) > 0) fault.statusTimes = (fault.statusTimes ?? 1) - 1;
        res.writeHead(fault.status, { ...CORS, 'Content-Type': 'text/plain' }).end(method === 'HEAD' ? undefined : `mock hub: HTTP ${fault.status}`);
        return log(fault.status);
      }
      const location = `/cdn/${file.sha256}?file=${encodeURIComponent(entry.file)}`;
      res.writeHead(302, {
        ...CORS,
        Location: location,
        'X-Linked-Size': String(file.bytes.byteLength),
        'X-Linked-Etag': `"${file.sha256}"`,
        'Content-Length': '0',
      }).end();
      return log(302);
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn && (method === 'GET' || method === 'HEAD')) {
      entry.kind = 'cdn';
      entry.file = url.searchParams.get('file');
      const file = (entry.file ? hosted.get(entry.file) : undefined) ?? [...hosted.values()].find((f) => f.sha256 === cdn[1]);
      if (!file || file.sha256 !== cdn[1]) {
        res.writeHead(404, { ...CORS, 'Content-Type': 'text/plain' }).end();
        return log(404);
      }
      entry.file = `${file.repo}/${file.path}`;
      return serveBytes(req, res, method, file, faultFor(file), log);
    }
    // The hub's tree API, as GET /api/models/<owner>/<name>/tree/<revision>[/<dir>][?recursive=true] answers it.
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/[^/]+(?:\/(.*))?$/.exec(url.pathname);
    if (tree && method === 'GET') {
      entry.kind = 'other';
      const repo = decodeURIComponent(tree[1]);
      const dir = tree[2] ? `${decodeURIComponent(tree[2]).replace(/\/$/, '')}/` : '';
      const recursive = url.searchParams.get('recursive') === 'true';
      const files = [...hosted.values()].filter((f) => f.repo === repo && f.path.startsWith(dir));
      if (files.length === 0) {
        res.writeHead(404, { ...CORS, 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'Repository not found' }));
        return log(404);
      }
      const listed = new Map<string, unknown>();
      for (const f of files) {
        const rest = f.path.slice(dir.length);
        if (!recursive && rest.includes('/')) {
          const folder = dir + rest.slice(0, rest.indexOf('/'));
          listed.set(folder, { type: 'directory', path: folder, oid: sha256Of(new TextEncoder().encode(folder)).slice(0, 40), size: 0 });
        } else {
          listed.set(f.path, { type: 'file', path: f.path, size: f.bytes.byteLength, oid: f.sha256.slice(0, 40), lfs: { oid: f.sha256, size: f.bytes.byteLength, pointerSize: 134 } });
        }
      }
      res.writeHead(200, { ...CORS, 'Content-Type': 'application/json' }).end(JSON.stringify([...listed.values()]));
      return log(200);
    }
    if (url.pathname === '/' && method === 'GET') {
      res.writeHead(200, { ...CORS, 'Content-Type': 'text/plain' }).end('mock Hugging Face hub\n');
      return log(200);
    }
    res.writeHead(404, { ...CORS, 'Content-Type': 'text/plain' }).end(`no route ${method} ${url.pathname}`);
    log(404);
  }

  async function serveBytes(req: IncomingMessage, res: ServerResponse, method: string, file: HostedFile, fault: HubFault | null, log: (s: number) => void): Promise<void> {
    const size = file.bytes.byteLength;
    const range = fault?.ignoreRange ? null : parseRange(req.headers.range, size);
    const common = { ...CORS, ETag: `"${file.sha256}"`, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...common, 'Content-Range': `bytes */${size}`, 'Content-Length': '0' }).end();
      return log(416);
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const status = range ? 206 : 200;
    res.writeHead(status, {
      ...common,
      'Content-Length': String(end - start + 1),
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
    });
    log(status);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    let body = file.bytes.subarray(start, end + 1);
    if (fault?.corruptAt !== undefined && fault.corruptAt >= start && fault.corruptAt <= end) {
      body = body.slice();
      body[fault.corruptAt - start] ^= 0xff;
    }
    let limit = body.byteLength;
    let cut = false;
    if (fault?.cutAfter !== undefined && (fault.cutTimes ?? 1) !== 0 && fault.cutAfter < body.byteLength) {
      if ((fault.cutTimes ?? 1) > 0) fault.cutTimes = (fault.cutTimes ?? 1) - 1;
      limit = fault.cutAfter;
      cut = true;
    }
    const bps = fault?.bytesPerSecond;
    const slice = bps ? Math.max(1024, Math.floor(bps / 20)) : 64 * 1024;
    let sent = 0;
    while (sent < limit) {
      if (res.destroyed) return;
      const n = Math.min(slice, limit - sent);
      const part = body.subarray(sent, sent + n);
      sent += n;
      // wait until the kernel has the bytes, so a cut really delivers `cutAfter` bytes first
      await new Promise<void>((resolve) => res.write(part, () => resolve()));
      if (bps) await wait((n / bps) * 1000);
    }
    if (cut) {
      // a socket error discards what the client has not read yet; a pause first makes "after N bytes" exact
      await wait(50);
      res.socket?.destroy();
    } else {
      res.end();
    }
  }

  async function control(req: IncomingMessage, res: ServerResponse, method: string, pathname: string, log: (s: number) => void): Promise<void> {
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { ...CORS, 'Content-Type': 'application/json' }).end(JSON.stringify(value));
      log(status);
    };
    if (pathname === '/_fault' && method === 'POST') {
      const body = JSON.parse(await readBody(req)) as HubFault & { path?: string; clear?: boolean };
      if (typeof body.path !== 'string') return json(400, { error: 'path is required' });
      const { path: filePath, clear, ...fault } = body;
      setFault(filePath, clear ? null : fault);
      return json(200, { ok: true });
    }
    if (pathname === '/_fault' && method === 'DELETE') {
      faults.clear();
      return json(200, { ok: true });
    }
    if (pathname === '/_requests' && method === 'GET') return json(200, requests.filter((r) => r.kind !== 'control'));
    if (pathname === '/_requests' && method === 'DELETE') {
      requests.length = 0;
      return json(200, { ok: true });
    }
    if (pathname === '/_manifest' && method === 'GET') return json(200, manifest());
    json(404, { error: `no control route ${method} ${pathname}` });
  }

  function manifest(): ReturnType<MockHub['manifest']> {
    const out: ReturnType<MockHub['manifest']> = {};
    for (const f of hosted.values()) {
      (out[f.repo] ??= { files: [] }).files.push({ path: f.path, size: f.bytes.byteLength, sha256: f.sha256, url: resolveUrl(f.path, f.repo) });
    }
    return out;
  }

  const baseUrl = (repo = defaultRepo) => `${base}/${repo}/resolve/main/`;
  const resolveUrl = (filePath: string, repo = defaultRepo) => `${baseUrl(repo)}${filePath}`;

  base = await listenOnLoopback(server, options.port);

  return {
    url: base,
    requests,
    setFault,
    clearFaults: () => faults.clear(),
    resolveUrl,
    baseUrl,
    manifest,
    close: () => closeServer(server),
  };
}

/** Deterministic bytes that do not compress and have no period a chunk boundary could hide behind. */
export function syntheticBytes(length: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { generateTinyModels } = await import('../../tools/generate-tiny-models.ts');
  const dir = await mkdtemp(path.join(tmpdir(), 'mock-hub-'));
  const generated = await generateTinyModels(dir);
  const repos: Record<string, Record<string, Uint8Array>> = {};
  for (const [set, { files }] of Object.entries(generated)) {
    const repo: Record<string, Uint8Array> = {};
    for (const f of files) repo[f.path] = new Uint8Array(await readFile(path.join(dir, set, ...f.path.split('/'))));
    repos[`test/${set}`] = repo;
  }
  await rm(dir, { recursive: true, force: true });
  repos['test/big'] = { 'blob.bin': syntheticBytes(24 * 1024 * 1024) };
  // tiny-sd with its UNet's weights in a 24 MiB external-data file (padded: onnxruntime reads only the ranges the
  // graph names): a model big enough to cut, pause and resume, which still loads and runs.
  const { buildReplicas, withExternalWeights } = await import('../../tools/tiny-models/replicas.ts');
  const unet = await withExternalWeights(repos['test/tiny-sd']['unet/model.onnx'], 'unet/model.onnx');
  const padded = syntheticBytes(24 * 1024 * 1024, 7);
  padded.set(unet['unet/model.onnx_data']);
  repos['test/tiny-sd-big'] = { ...repos['test/tiny-sd'], 'unet/model.onnx': unet['unet/model.onnx'], 'unet/model.onnx_data': padded };
  // Replicas of the catalogue's real repositories, under their real names (the browser tests' Hugging Face mirror).
  Object.assign(repos, await buildReplicas());
  const hub = await startMockHub({ repos, repo: 'test/tiny-sd', port: Number(arg('port') ?? 4397) });
  console.log(`Mock hub listening on ${hub.url} (repos: ${Object.keys(repos).join(', ')})`);
  const stop = () => void hub.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
