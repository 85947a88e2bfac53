import type { Request, Response } from 'express';

export interface EventStream {
  /**
   * Sends one `data: <json>` message. False when the client has not yet taken what was sent
   * before: wait for `drained()` before sending more, so a slow client's backlog stays in Redis
   * rather than in this process.
   */
  send(message: object): boolean;
  /** Resolves once the client has taken what was sent, or has gone away. */
  drained(): Promise<void>;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  end(): void;
}

/** Seconds between keep-alive comments, as BinderHub sends them. */
const KEEPALIVE_MS = 25_000;

/**
 * Opens a server-sent event stream on `response`: `data: <json>\n\n` messages and a keep-alive
 * comment every 25 s so proxies do not close an idle stream during a long build.
 */
export function openEventStream(request: Request, response: Response): EventStream {
  response.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  response.flushHeaders();
  const closed = new AbortController();
  const keepalive = setInterval(() => response.write(':keepalive\n\n'), KEEPALIVE_MS);
  const stop = () => {
    clearInterval(keepalive);
    closed.abort();
  };
  request.on('close', stop);
  return {
    send: (message) =>
      !response.writableEnded && response.write(`data: ${JSON.stringify(message)}\n\n`),
    drained: () =>
      new Promise<void>((resolve) => {
        if (!response.writableNeedDrain || closed.signal.aborted) return resolve();
        const done = () => {
          response.off('drain', done);
          closed.signal.removeEventListener('abort', done);
          resolve();
        };
        response.on('drain', done);
        closed.signal.addEventListener('abort', done, { once: true });
      }),
    signal: closed.signal,
    end: () => {
      stop();
      response.end();
    },
  };
}
