/** Small pieces the loopback test servers share. */
import type { IncomingMessage, Server } from 'node:http';

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Stops listening and drops open connections (a kept-alive browser connection would hold close() forever). */
export function closeServer(server: Server, beforeClose: () => void = () => undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    beforeClose();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
