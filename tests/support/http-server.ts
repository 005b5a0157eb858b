/** Small pieces the loopback test servers share. */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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

/** Listens on 127.0.0.1 (port 0 picks a free one) and resolves to the server's base URL. */
export function listenOnLoopback(server: Server, port = 0): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}
