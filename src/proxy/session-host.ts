/**
 * A DNS label as a session name may appear in a host name: lowercase letters, digits and inner
 * hyphens, at most 63 characters. Anything else (dots, `@`, `:`) could change which host a
 * URL names, so it never becomes part of one.
 */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** `{session}.sessions.example.org` with an optional `:port`, as BINDERY_SESSION_HOST holds it. */
const PATTERN = /^\{session\}\.([a-z0-9.-]+?)(?::(\d{1,5}))?$/i;

/** Sessions on host names of their own (BINDERY_SESSION_HOST), as the proxy sees them. */
export interface SessionHost {
  /** The session a Host header names (`<session>.<domain>[:port]`), or undefined. */
  sessionFor(host: string | undefined): string | undefined;
  /**
   * The session's origin, `<scheme>://<session>.<domain>[:port]`; undefined when the name
   * cannot be a host name's first label.
   */
  originFor(session: string): string | undefined;
}

/** Whether `session` can be the first label of a host name as it is. */
export const isHostLabel = (session: string) => LABEL.test(session);

/**
 * Reads BINDERY_SESSION_HOST. The scheme comes from the public URL, and so does the port when
 * the pattern names none: a service at `https://binder.example.org` serves session `s` at
 * `https://s.sessions.example.org`.
 */
export function sessionHostFrom(pattern: string, publicUrl: string): SessionHost {
  const match = PATTERN.exec(pattern);
  if (!match) throw new Error(`"${pattern}" is not a host name starting with {session}.`);
  const domain = match[1]!.toLowerCase();
  const service = new URL(publicUrl);
  const port = match[2] ?? service.port;
  const suffix = `.${domain}`;
  return {
    sessionFor(host) {
      if (!host) return undefined;
      const name = host.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
      if (!name.endsWith(suffix)) return undefined;
      const label = name.slice(0, -suffix.length);
      return LABEL.test(label) ? label : undefined;
    },
    originFor(session) {
      if (!LABEL.test(session)) return undefined;
      return `${service.protocol}//${session}${suffix}${port ? `:${port}` : ''}`;
    },
  };
}

/**
 * The public URL of a session's Jupyter, ending in `/`: on its own host name when
 * BINDERY_SESSION_HOST is set, else under the service's public URL. Jupyter's base URL is
 * `/user/<session>/` either way, so the path is the same.
 */
export function sessionUrl(
  config: { publicUrl: string; sessionHost?: string | undefined },
  session: string,
): string {
  const origin = config.sessionHost
    ? sessionHostFrom(config.sessionHost, config.publicUrl).originFor(session)
    : undefined;
  return `${origin ?? config.publicUrl}/user/${session}/`;
}
