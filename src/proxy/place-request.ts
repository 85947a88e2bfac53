import type { SessionHost } from './session-host.js';

/** What the proxy does with a request, decided from its Host and path alone. */
export type Placement =
  /** Not the proxy's: the service's own pages. */
  | { to: 'service' }
  /** Forward to the session's Jupyter, asking it for `path` (and query). */
  | { to: 'session'; session: string; path: string }
  /** Answer with a redirect (GET and HEAD only, never a WebSocket). */
  | { to: 'redirect'; location: string }
  /**
   * The session lives on its own host name and this request came to the service's: redirect an
   * HTTP request there, refuse a WebSocket. `location` is undefined for a name no host can have.
   */
  | { to: 'session host'; session: string; location: string | undefined }
  /** No session here: 404. `session` is undefined when the request names none. */
  | { to: 'none'; session: string | undefined };

export interface RequestLine {
  method: string | undefined;
  url: string | undefined;
  /** The Host header. */
  host: string | undefined;
  /** An upgrade (WebSocket): answered by the session or refused, never redirected. */
  upgrade: boolean;
}

/** `bindery-1a2b` from `/user/bindery-1a2b/tree?x`, and whether anything follows the name. */
export function sessionFromPath(url: string): { session: string; bare: boolean } | undefined {
  const match = /^\/user\/([^/?#]+)([/?#]?)/.exec(url);
  return match ? { session: match[1]!, bare: match[2] !== '/' } : undefined;
}

/**
 * Where a request goes. On a session host (`<session>.<domain>`) everything is that session's,
 * whatever the path names: Jupyter's base URL stays `/user/<session>/`, so a path outside it
 * is mapped into it (a page load redirected, anything else forwarded with the prefix added).
 * On the service's host, `/user/<session>/…` is the session's when sessions share the origin,
 * and only a redirect to the session's host when `sessionHost` is set.
 */
export function placeRequest(line: RequestLine, sessionHost: SessionHost | undefined): Placement {
  const url = line.url ?? '';
  const redirectable = !line.upgrade && (line.method === 'GET' || line.method === 'HEAD');
  const onHost = sessionHost?.sessionFor(line.host);
  if (onHost !== undefined) {
    const prefix = `/user/${onHost}`;
    if (!url.startsWith('/')) return { to: 'none', session: onHost };
    const found = sessionFromPath(url);
    if (found?.session === onHost && !found.bare)
      return { to: 'session', session: onHost, path: url };
    if (found?.session === onHost) {
      const rest = url.slice(prefix.length);
      return redirectable
        ? { to: 'redirect', location: `${prefix}/${rest}` }
        : { to: 'session', session: onHost, path: `${prefix}/${rest}` };
    }
    return redirectable
      ? { to: 'redirect', location: `${prefix}${url}` }
      : { to: 'session', session: onHost, path: `${prefix}${url}` };
  }

  const found = sessionFromPath(url);
  if (!found)
    return url.startsWith('/user/') || line.upgrade
      ? { to: 'none', session: undefined }
      : { to: 'service' };
  const { session, bare } = found;
  if (sessionHost) {
    const origin = sessionHost.originFor(session);
    return { to: 'session host', session, location: origin && `${origin}${url}` };
  }
  if (bare && redirectable) {
    // Jupyter lives at /user/<session>/; /user/<session> alone would be its 404.
    return { to: 'redirect', location: `/user/${session}/${url.slice(`/user/${session}`.length)}` };
  }
  return { to: 'session', session, path: url };
}
