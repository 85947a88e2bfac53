import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { codedError, limitConnectTime } from './forward-request.js';
import { requestHeadersFor } from './proxy-headers.js';
import { parseResponseHead, serializeResponseHead } from './response-head.js';

export interface TunnelOptions {
  connectTimeoutMs: number;
  /** The request line's path for the target. @defaultValue the client's */
  path?: string;
  /** The target's answer headers as the client should see them. @defaultValue unchanged */
  responseHeaders?: (rawHeaders: string[]) => string[];
  /** Bytes went one way or the other (called per chunk; the caller throttles). */
  onTraffic: () => void;
  /**
   * The target could not be reached, or answered with no head the proxy can read; the client
   * socket has been sent nothing, for the caller's answer.
   */
  onRefused: (error: NodeJS.ErrnoException) => void;
  /** The tunnel is up; `upstream` is the connection to the target. */
  onOpen?: (upstream: Socket, status: number) => void;
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
 * side closes. The target's answer, 101 or a refusal, reaches the client with its status and
 * headers as `responseHeaders` leaves them (a browser stores cookies from it too), re-sent as
 * CRLF lines; a head the proxy cannot read is refused, never passed on.
 */
export function tunnelUpgrade(
  request: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: URL,
  options: TunnelOptions,
): void {
  const upstream = connect({ host: target.hostname, port: Number(target.port || 80) });
  /** Connected to the target: closing either side ends the other. */
  let open = false;
  /** The target's head has gone to the client: the caller can no longer answer. */
  let answered = false;
  let refused = false;
  const refuse = (error: NodeJS.ErrnoException) => {
    upstream.destroy();
    if (answered || refused) return;
    refused = true;
    options.onRefused(error);
  };
  limitConnectTime(upstream, options.connectTimeoutMs, refuse);
  upstream.on('error', (error: NodeJS.ErrnoException) =>
    answered ? client.destroy() : refuse(error),
  );
  upstream.on('close', () => {
    if (answered) endThenDestroy(client);
    else if (!client.destroyed)
      refuse(codedError('the session closed the connection without answering', 'ECONNRESET'));
  });
  client.on('error', () => upstream.destroy());
  client.on('close', () => (open ? endThenDestroy(upstream) : upstream.destroy()));

  let received = Buffer.alloc(0);
  const readHead = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const answer = parseResponseHead(received);
    if (answer === undefined) return;
    if (answer === 'invalid') {
      return refuse(codedError('the session answered the upgrade with no valid head', 'EPROTO'));
    }
    upstream.off('data', readHead);
    answered = true;
    const headers = options.responseHeaders?.(answer.rawHeaders) ?? answer.rawHeaders;
    client.write(serializeResponseHead(answer.statusLine, headers));
    if (answer.rest.length > 0) client.write(answer.rest);
    // A clean end on one side ends the other; an error on one destroys both (above).
    upstream.pipe(client);
    options.onOpen?.(upstream, Number(answer.statusLine.split(' ')[1]));
  };

  upstream.once('connect', () => {
    if (refused || client.destroyed) return void upstream.destroy();
    open = true;
    const headers = requestHeadersFor(request, true);
    let text = `${request.method} ${options.path ?? request.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    for (const socket of [upstream, client as Partial<Socket>]) {
      socket.setNoDelay?.(true);
      socket.setKeepAlive?.(true, 30_000);
    }
    upstream.write(`${text}\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.on('data', options.onTraffic);
    client.on('data', options.onTraffic);
    upstream.on('data', readHead);
    client.pipe(upstream);
  });
}
