import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `expect`,
 * which Node's server has already answered. Transfer-Encoding is left to Node: it re-frames
 * bodies itself from Content-Length or chunking.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
/**
 * The service's own cookies (a GitHub sign-in, one under way): a session runs a repository's
 * code, and must never see them.
 */
export const SERVICE_COOKIES = new Set(['bindery-user', 'bindery-sign-in']);

/** A Cookie header's value without the service's own cookies; empty when none is left. */
export function withoutServiceCookies(value: string): string {
  return value
    .split(';')
    .filter((pair) => !SERVICE_COOKIES.has(pair.slice(0, pair.indexOf('=')).trim()))
    .join(';')
    .trim();
}

/** Names listed in a Connection header, which are hop-by-hop too. */
function connectionOptions(rawHeaders: string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const name of rawHeaders[i + 1]!.split(',')) names.add(name.trim().toLowerCase());
  }
  return names;
}

/** `[name, value, name, value, …]` without the pairs `drop` says to drop. */
function filterRaw(rawHeaders: string[], drop: (lowerName: string) => boolean): string[] {
  const kept: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!drop(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** X-Forwarded-For/-Proto appended to what an earlier proxy sent; -Host kept when set. */
function forwardedHeaders(request: IncomingMessage): string[] {
  const header = (name: string) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const append = (name: string, value: string | undefined) => {
    const earlier = header(name);
    const list = [earlier, value].filter(Boolean).join(', ');
    return list ? [name, list] : [];
  };
  const proto = (request.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
  const host = header('x-forwarded-host') ?? request.headers.host;
  return [
    ...append('x-forwarded-for', request.socket.remoteAddress),
    ...append('x-forwarded-proto', proto),
    ...(host ? ['x-forwarded-host', host] : []),
  ];
}

/**
 * The client's headers as the target should see them: the same names, values, order and Host
 * (Jupyter compares a WebSocket's Origin with Host), without hop-by-hop headers unless this
 * is an upgrade, plus X-Forwarded-*.
 */
export function requestHeadersFor(request: IncomingMessage, upgrade: boolean): string[] {
  const connection = upgrade ? new Set<string>() : connectionOptions(request.rawHeaders);
  const kept = filterRaw(
    request.rawHeaders,
    (name) => FORWARDED.has(name) || (!upgrade && (HOP_BY_HOP.has(name) || connection.has(name))),
  );
  const cookiesKept: string[] = [];
  for (let i = 0; i < kept.length; i += 2) {
    const isCookie = kept[i]!.toLowerCase() === 'cookie';
    const value = isCookie ? withoutServiceCookies(kept[i + 1]!) : kept[i + 1]!;
    if (!isCookie || value) cookiesKept.push(kept[i]!, value);
  }
  return [...cookiesKept, ...forwardedHeaders(request)];
}

/** The target's response headers for the client: all but hop-by-hop ones and framing. */
export function responseHeadersFor(response: IncomingMessage): string[] {
  const connection = connectionOptions(response.rawHeaders);
  return filterRaw(
    response.rawHeaders,
    (name) => HOP_BY_HOP.has(name) || connection.has(name) || name === 'transfer-encoding',
  );
}
