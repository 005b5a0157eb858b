/**
 * A loopback static file server for the bench's quantization case: onnxruntime-web's dist under
 * /ort/ and model folders under /models/<id>/, streamed (a UNet is hundreds of MB). Port 0: the
 * system picks a free one.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json' };

/** Serves `routes` (URL prefix like '/ort/' -> folder) and an empty page at '/'. */
export async function serveStatic(routes: Record<string, string>): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
      if (urlPath === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>quantization bench</title>');
        return;
      }
      const prefix = Object.keys(routes).find((p) => urlPath.startsWith(p));
      const root = prefix ? path.resolve(routes[prefix]) : null;
      const file = root ? path.resolve(root, urlPath.slice(prefix!.length)) : null;
      // nothing outside the route's folder
      if (!root || !file || (file !== root && !file.startsWith(`${root}${path.sep}`))) {
        res.writeHead(404).end();
        return;
      }
      try {
        const info = await stat(file);
        if (!info.isFile()) throw new Error('not a file');
        res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': info.size });
        createReadStream(file).pipe(res);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // a kept-alive browser connection would hold close() open
        server.closeAllConnections();
      }),
  };
}
