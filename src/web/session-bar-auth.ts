import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { withoutServiceCookies } from '../proxy/proxy-headers.js';

/** The session bar's own cookie: the token's HMAC, sent only to `/user/<session>/_bindery/`. */
export const BAR_COOKIE = 'bindery-bar';

/** How the visitor proved they hold the session: what Jupyter itself would accept. */
export type BarAccess =
  /** The session's token, in `?token=` (a link) or `Authorization: token …` (a script). */
  | 'token in query'
  | 'token in header'
  /** The bar's cookie, set when the bar was opened with the token. */
  | 'bar cookie'
  /** Jupyter's own sign-in cookie, which the session's Jupyter accepted for this request. */
  | 'jupyter cookie';

/** Whether two secrets are equal, compared as SHA-256 digests in constant time. */
export function sameSecret(presented: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The bar cookie's value for a session token; a new session (new token) never matches. */
export const barCookieValue = (token: string) =>
  createHmac('sha256', token).update('bindery session bar').digest('hex');

/** The secret a form posted to the bar must carry: a page of another origin cannot read it. */
export const barFormSecret = (token: string) =>
  createHmac('sha256', token).update('bindery session bar form').digest('hex');

/** The named cookie's value in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const equals = pair.indexOf('=');
    if (equals > 0 && pair.slice(0, equals).trim() === name) return pair.slice(equals + 1).trim();
  }
  return undefined;
}

/** `token` from `?token=`, or from `Authorization: token …` (Jupyter also takes `Bearer`). */
function presentedToken(request: IncomingMessage): { token: string; in: BarAccess } | undefined {
  const header = /^(?:token|bearer)\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (header) return { token: header, in: 'token in header' };
  const query = new URL(request.url ?? '/', 'http://bar').searchParams.get('token');
  return query ? { token: query, in: 'token in query' } : undefined;
}

export interface BarSession {
  name: string;
  token: string;
  /** The session's Jupyter, e.g. `http://172.18.0.5:8888`. */
  target: string;
}

/**
 * Whether the request may use the bar of `session`, and how it proved it: the session's token
 * (query or header, as Jupyter takes it), the bar's own cookie, or else Jupyter's sign-in
 * cookie, which only the session's Jupyter can check: the request's cookies and Host (Jupyter
 * names its cookie after the host) go to its `/api/status`, which answers 200 only to a
 * signed-in visitor. A wrong token is refused outright, never checked against the cookie.
 */
export async function authenticateBar(
  request: IncomingMessage,
  session: BarSession,
): Promise<BarAccess | undefined> {
  const presented = presentedToken(request);
  if (presented) return sameSecret(presented.token, session.token) ? presented.in : undefined;
  const cookies = request.headers.cookie;
  const barCookie = cookieValue(cookies, BAR_COOKIE);
  if (barCookie !== undefined && sameSecret(barCookie, barCookieValue(session.token))) {
    return 'bar cookie';
  }
  if (!cookies) return undefined;
  return (await jupyterStatus(session, cookies, request.headers.host)) === 200
    ? 'jupyter cookie'
    : undefined;
}

/**
 * The status the session's Jupyter answers `/api/status` with, asked with the visitor's
 * cookies and Host; 0 when it does not answer in 5 s. node:http, since fetch would not send
 * the Host header given to it.
 */
function jupyterStatus(session: BarSession, cookies: string, host: string | undefined) {
  return new Promise<number>((resolve) => {
    const asked = httpRequest(
      new URL(`/user/${session.name}/api/status`, session.target),
      {
        // Never the service's own cookies: the session runs a repository's code.
        headers: { cookie: withoutServiceCookies(cookies), ...(host ? { host } : {}) },
        timeout: 5_000,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    asked.on('timeout', () => asked.destroy());
    asked.on('error', () => resolve(0));
    asked.end();
  });
}
