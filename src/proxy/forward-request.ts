import {
  request as httpRequest,
  type Agent,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { requestHeadersFor, responseHeadersFor } from './proxy-headers.js';

export interface ForwardOptions {
  agent: Agent;
  /** Give up on a target that does not accept the connection in this long. */
  connectTimeoutMs: number;
  /** The path and query to ask the target for. @defaultValue the client's */
  path?: string;
  /** The target's answer headers as the client should see them. @defaultValue unchanged */
  responseHeaders?: (rawHeaders: string[]) => string[];
  /**
   * The target failed. `answered` is false when nothing has been sent to the client yet
   * (the caller answers it); true when the response was cut short (the client sees a reset).
   */
  onError: (error: NodeJS.ErrnoException, answered: boolean) => void;
}

/** An error with a Node-style code, as net's own errors have. */
export const codedError = (message: string, code: string): NodeJS.ErrnoException =>
  Object.assign(new Error(message), { code });

/**
 * Fails a new connection that is not established within `ms`: a session's address that no
 * longer exists may answer nothing at all. Reused keep-alive sockets are already connected.
 */
export function limitConnectTime(socket: Socket, ms: number, fail: (error: Error) => void) {
  if (!socket.connecting) return;
  const timer = setTimeout(
    () => fail(codedError(`connect ETIMEDOUT after ${ms} ms`, 'ETIMEDOUT')),
    ms,
  );
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Sends one request to `target` (http://host:port) with its method, path, query, headers and
 * body unchanged (the path as `options.path` maps it), and streams the answer back with its
 * status and headers (as `options.responseHeaders` leaves them).
 */
export function forwardRequest(
  request: IncomingMessage,
  response: ServerResponse,
  target: URL,
  options: ForwardOptions,
): void {
  let failed = false;
  const fail = (error: NodeJS.ErrnoException) => {
    if (failed || response.destroyed) return;
    failed = true;
    upstream.destroy();
    if (response.headersSent) response.destroy();
    options.onError(error, response.headersSent);
  };

  const upstream = httpRequest({
    agent: options.agent,
    host: target.hostname,
    port: target.port || 80,
    method: request.method,
    path: options.path ?? request.url,
    headers: requestHeadersFor(request, false),
  });
  upstream.on('socket', (socket) =>
    limitConnectTime(socket, options.connectTimeoutMs, (error) => fail(error)),
  );
  upstream.on('error', fail);
  upstream.on('response', (answer) => {
    try {
      const headers = responseHeadersFor(answer);
      response.writeHead(
        answer.statusCode ?? 502,
        answer.statusMessage,
        options.responseHeaders?.(headers) ?? headers,
      );
    } catch (error) {
      // The session runs the repository's code: its answer may be anything Node will not send.
      return fail(error as NodeJS.ErrnoException);
    }
    answer.pipe(response);
    answer.on('close', () => {
      if (!answer.complete) fail(codedError('the session reset the response', 'ECONNRESET'));
    });
  });
  // The client went away (or the response ended): nothing more to fetch or send.
  response.on('close', () => {
    if (!response.writableFinished) upstream.destroy();
  });
  request.pipe(upstream);
}
