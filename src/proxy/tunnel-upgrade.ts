import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { limitConnectTime } from './forward-request.js';
import { requestHeadersFor } from './proxy-headers.js';

export interface TunnelOptions {
  connectTimeoutMs: number;
  /** Bytes went one way or the other (called per chunk; the caller throttles). */
  onTraffic: () => void;
  /** The target could not be reached; the client socket is untouched, for the caller's answer. */
  onRefused: (error: NodeJS.ErrnoException) => void;
  /** The tunnel is up; `upstream` is the connection to the target. */
  onOpen?: (upstream: Socket) => void;
}

/** Sends what is queued and a FIN, then lets go of the socket. */
function endThenDestroy(socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket.writableFinished) return void socket.destroy();
  socket.once('finish', () => socket.destroy());
  socket.end();
}

/**
 * Carries an upgrade request (a WebSocket) to `target`: one TCP connection, the request line
 * and the client's headers as they came (Upgrade, Connection, Sec-WebSocket-*, Host, Origin),
 * the bytes the client sent after them, then both sockets piped into each other until either
 * side closes. The target's answer, 101 or a refusal, reaches the client byte for byte.
 */
export function tunnelUpgrade(
  request: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: URL,
  options: TunnelOptions,
): void {
  const upstream = connect({ host: target.hostname, port: Number(target.port || 80) });
  let open = false;
  let refused = false;
  const refuse = (error: NodeJS.ErrnoException) => {
    upstream.destroy();
    if (open || refused) return;
    refused = true;
    options.onRefused(error);
  };
  limitConnectTime(upstream, options.connectTimeoutMs, refuse);
  upstream.on('error', (error: NodeJS.ErrnoException) => (open ? client.destroy() : refuse(error)));
  upstream.on('close', () => open && endThenDestroy(client));
  client.on('error', () => upstream.destroy());
  client.on('close', () => (open ? endThenDestroy(upstream) : upstream.destroy()));

  upstream.once('connect', () => {
    if (refused || client.destroyed) return void upstream.destroy();
    open = true;
    const headers = requestHeadersFor(request, true);
    let text = `${request.method} ${request.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    for (const socket of [upstream, client as Partial<Socket>]) {
      socket.setNoDelay?.(true);
      socket.setKeepAlive?.(true, 30_000);
    }
    upstream.write(`${text}\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.on('data', options.onTraffic);
    client.on('data', options.onTraffic);
    // A clean end on one side ends the other; an error on one destroys both (above).
    upstream.pipe(client).pipe(upstream);
    options.onOpen?.(upstream);
  });
}
