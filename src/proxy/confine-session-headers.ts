/**
 * Response headers with which a page claims more than its own path: the browser applies them to
 * the whole origin (or host) and remembers them. A session runs a repository's code, so it may
 * send any of them; none is something Jupyter needs.
 */
const ORIGIN_WIDE = new Set([
  // Lets a worker script under /user/<session>/ control a wider scope, up to `/`:
  // https://w3c.github.io/ServiceWorker/#service-worker-allowed
  'service-worker-allowed',
  // Wipes cookies, storage and caches of the whole origin: the service's and every session's.
  'clear-site-data',
  // Host-wide policies the browser caches: forced HTTPS (with subdomains), alternative
  // services, and network-error reports of every later request sent to the session's endpoint.
  'strict-transport-security',
  'alt-svc',
  'nel',
  'report-to',
]);

/** Chromium ignores a cookie attribute value longer than this (and then uses the default path). */
const MAX_ATTRIBUTE_VALUE = 1024;

/** RFC 6265 §5.1.4: the cookie path a browser uses when Set-Cookie names none. */
export function defaultCookiePath(requestUrl: string): string {
  const path = requestUrl.split(/[?#]/, 1)[0]!;
  const last = path.lastIndexOf('/');
  return path.startsWith('/') && last > 0 ? path.slice(0, last) : '/';
}

/** Whether a cookie with this path is sent only to requests under `prefix` (`/user/<s>/`). */
const insidePrefix = (path: string, prefix: string) =>
  path === prefix.slice(0, -1) || path.startsWith(prefix);

/**
 * One Set-Cookie value confined to the session: any Domain attribute goes (the cookie stays on
 * the host that set it, never its parent domain or sibling session hosts), and a Path outside
 * `prefix`, or a default path outside it, becomes `prefix`. A cookie that needs neither is
 * returned unchanged. Attribute names are read as loosely as a browser reads them (RFC 6265
 * §5.2: case-insensitive, whitespace trimmed, the last Path wins).
 *
 * @param requestUrl - the path the browser asked for, which decides the default path
 */
export function confineCookie(value: string, prefix: string, requestUrl: string): string {
  const [pair, ...attributes] = value.split(';');
  let path: string | undefined;
  let paths = 0;
  let domain = false;
  const kept = attributes.filter((attribute) => {
    const equals = attribute.indexOf('=');
    const name = (equals < 0 ? attribute : attribute.slice(0, equals)).trim().toLowerCase();
    if (name === 'domain') domain = true;
    if (name === 'path') {
      const given = equals < 0 ? '' : attribute.slice(equals + 1).trim();
      path = given.startsWith('/') && given.length <= MAX_ATTRIBUTE_VALUE ? given : undefined;
      paths += 1;
    }
    return name !== 'domain' && name !== 'path';
  });
  // One Path inside the session and no Domain: nothing to change.
  const changed = domain || paths > 1 || (paths === 1 && path === undefined);
  const effective = path ?? defaultCookiePath(requestUrl);
  if (!changed && insidePrefix(effective, prefix)) return value;
  const confined = insidePrefix(effective, prefix) ? path : prefix;
  const rest = [...kept.map((attribute) => attribute.trim()), confined && `Path=${confined}`];
  return [pair!.trim(), ...rest.filter(Boolean)].join('; ');
}

/**
 * A session's response headers (`[name, value, …]` as Node's rawHeaders) without those that
 * claim the whole origin, and with every cookie confined to `/user/<session>/`.
 */
export function confineSessionHeaders(
  rawHeaders: readonly string[],
  session: string,
  requestUrl: string,
): string[] {
  const prefix = `/user/${session}/`;
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (ORIGIN_WIDE.has(lower)) continue;
    const value = rawHeaders[i + 1]!;
    kept.push(name, lower === 'set-cookie' ? confineCookie(value, prefix, requestUrl) : value);
  }
  return kept;
}
