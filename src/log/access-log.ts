import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/**
 * Query parameters never written to the log: Jupyter's `token` and `_xsrf`, OAuth's `code`
 * and `state`, a private session's share link (`bindery_share`), and anything else that names
 * itself a secret.
 */
const SECRET_PARAMETER = /token|secret|password|passwd|key|auth|code|state|xsrf|session_id|share/i;
/** `scheme://user:password@` in a path, plain or URL-escaped (`/build/git/https%3A%2F%2F…`). */
const USERINFO = /(:\/\/|%3A%2F%2F)(?:(?!%2F|%40)[^/?#@])*(?:@|%40)/gi;
const LONGEST_PATH = 500;

/**
 * `url` as an access log line may show it: query parameters that may hold a credential are
 * left out, so are credentials in a git URL, and a very long path is cut.
 */
export function pathForLog(url = '/'): string {
  const query = url.indexOf('?');
  let path = (query < 0 ? url : url.slice(0, query)).replace(USERINFO, '$1');
  if (path.length > LONGEST_PATH) path = `${path.slice(0, LONGEST_PATH)}…`;
  if (query < 0) return path;
  const parameters = new URLSearchParams(url.slice(query + 1));
  for (const name of new Set(parameters.keys())) {
    if (SECRET_PARAMETER.test(name)) parameters.delete(name);
  }
  const rest = parameters.toString();
  return rest ? `${path}?${rest.slice(0, LONGEST_PATH)}` : path;
}

export interface AccessDetails {
  /** The session the request is for (the proxy's requests). */
  session?: string;
  /** The client's address. @defaultValue the connection's remote address */
  client?: string;
  /** Routine requests that succeed (a session's API calls, probes) are logged at debug. */
  chatty?: boolean;
}

/**
 * Writes one access log line for `request` once its response is over (sent, or the client gone):
 * method, path (pathForLog), status, duration in ms, client address and session. Headers are
 * never logged: they hold Authorization and cookies. Errors (5xx) are at warn; refusals and
 * routine requests at info, chatty ones at debug.
 */
export function logAccess(
  log: Logger,
  request: IncomingMessage,
  response: ServerResponse,
  details: AccessDetails = {},
): void {
  const started = performance.now();
  const method = request.method ?? 'GET';
  const path = pathForLog(request.url);
  const client = details.client ?? request.socket.remoteAddress;
  response.once('close', () => {
    const status = response.statusCode;
    const level = status >= 500 ? 'warn' : details.chatty && status < 400 ? 'debug' : 'info';
    const fields = {
      access: true,
      method,
      path,
      status,
      ms: Math.round(performance.now() - started),
      client,
      ...(details.session && { session: details.session }),
      ...(!response.writableFinished && { aborted: true }),
    };
    log[level](fields, `${method} ${path} ${status}`);
  });
}

/** The access log line of a WebSocket upgrade: 101 when tunnelled, the refusal's status if not. */
export function logUpgrade(
  log: Logger,
  request: IncomingMessage,
  status: number,
  startedAt: number,
  details: Omit<AccessDetails, 'chatty'> = {},
): void {
  const method = request.method ?? 'GET';
  const path = pathForLog(request.url);
  const fields = {
    access: true,
    method,
    path,
    status,
    ms: Math.round(performance.now() - startedAt),
    client: details.client ?? request.socket.remoteAddress,
    upgrade: true,
    ...(details.session && { session: details.session }),
  };
  log[status >= 500 ? 'warn' : 'info'](fields, `${method} ${path} ${status} (WebSocket)`);
}
