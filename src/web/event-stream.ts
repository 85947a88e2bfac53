import type { Request, Response } from 'express';

export interface EventStream {
  /** Sends one `data: <json>` message. */
  send(message: object): void;
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
    send: (message) => {
      if (!response.writableEnded) response.write(`data: ${JSON.stringify(message)}\n\n`);
    },
    signal: closed.signal,
    end: () => {
      stop();
      response.end();
    },
  };
}
