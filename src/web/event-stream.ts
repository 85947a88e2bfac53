import type { Request, Response } from 'express';
import { isStreamId } from '../queue/build-log.js';

export interface EventStream {
  /**
   * Sends one `data: <json>` message, after an `id: <id>` line when `id` is given (a build log
   * entry's id, which the browser sends back as Last-Event-ID when it reconnects). False when the client has not yet taken what was sent
   * before: wait for `drained()` before sending more, so a slow client's backlog stays in Redis
   * rather than in this process.
   */
  send(message: object, id?: string): boolean;
  /** Resolves once the client has taken what was sent, or has gone away. */
  drained(): Promise<void>;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  end(): void;
}

/** Seconds between keep-alive comments, as BinderHub sends them. */
const KEEPALIVE_MS = 25_000;
/** How soon a browser reconnects a dropped stream (its own default is about 3 s). */
const RETRY_MS = 1_000;

/**
 * Where a reconnecting client's stream goes on: after the `Last-Event-ID` its browser sends, or
 * the `after` query of a page that showed the log up to there; `0-0` (the start) otherwise.
 */
export function resumePoint(request: Request): string {
  const header = request.get('last-event-id');
  const query = typeof request.query.after === 'string' ? request.query.after : undefined;
  const id = header ?? query ?? '';
  return isStreamId(id) ? id : '0-0';
}

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
  response.write(`retry: ${RETRY_MS}\n\n`);
  const closed = new AbortController();
  const keepalive = setInterval(() => response.write(':keepalive\n\n'), KEEPALIVE_MS);
  const stop = () => {
    clearInterval(keepalive);
    closed.abort();
  };
  request.on('close', stop);
  return {
    send: (message, id) =>
      !response.writableEnded &&
      response.write(
        `${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(message)}\n\n`,
      ),
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
