import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, isIPv6 } from 'node:net';
import { ForbiddenError, NotFoundError, UnavailableError } from '../errors.js';
import { isPublicAddress } from './address-ranges.js';

export type LookupAll = (hostname: string) => Promise<{ address: string }[]>;

/** The system resolver, every address of a name. */
export const lookupAll: LookupAll = (hostname) => dnsLookup(hostname, { all: true });

/** What the host guard needs: the hosts an operator trusts, and DNS. */
export interface GitHostGuard {
  allowedHosts: readonly string[];
  /** DNS; the system resolver by default. */
  lookup?: LookupAll;
}

/**
 * A remote as git must reach it: the URL to give git, and the configuration that makes git
 * connect to the addresses the guard vetted instead of asking DNS again.
 */
export interface PinnedRemote {
  url: string;
  config: Record<string, string>;
}

/**
 * The guard's answers, by host name, for the git commands that follow it in this process:
 * a name that answered a public address to the guard must not answer 127.0.0.1 to git a
 * moment later (DNS rebinding). Kept for ten minutes, and for a bounded number of hosts.
 */
const vetted = new Map<string, { addresses: string[]; until: number }>();
const PIN_TTL_MS = 10 * 60_000;
const MAX_PINS = 1_000;

/**
 * Refuses git hosts that resolve to loopback, private, link-local or other non-public
 * addresses (a launch URL must not reach into the operator's network), unless the host is
 * listed in BINDERY_GIT_ALLOWED_HOSTS. Every address the name resolves to must be public.
 * Returns the remote pinned to those addresses, and remembers them for remoteFor.
 */
export async function assertGitHostAllowed(
  url: URL,
  allowedHosts: readonly string[],
  lookup: LookupAll = lookupAll,
): Promise<PinnedRemote> {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  // The operator trusts these to resolve where they like; an address literal needs no DNS.
  const unpinned = { url: url.href, config: {} };
  if (allowedHosts.includes(host) || allowedHosts.includes(url.host.toLowerCase())) {
    return unpinned;
  }
  let addresses: string[];
  if (isIP(host)) {
    addresses = [host];
  } else {
    try {
      addresses = (await lookup(host)).map((entry) => entry.address);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAI_AGAIN') {
        throw new UnavailableError(`The name ${host} could not be looked up just now; try again.`);
      }
      throw new NotFoundError(`The git host ${host} does not resolve; check the URL's host name.`);
    }
  }
  const inside = addresses.filter((address) => !isPublicAddress(address));
  if (inside.length > 0 || addresses.length === 0) {
    throw new ForbiddenError(
      `The git host ${host} resolves to ${inside.join(', ') || 'no address'}, a private or local address; ` +
        `Bindery only clones from public hosts. An operator can allow it with ` +
        `BINDERY_GIT_ALLOWED_HOSTS=${host}.`,
    );
  }
  if (isIP(host)) return unpinned;
  vetted.delete(host);
  vetted.set(host, { addresses, until: Date.now() + PIN_TTL_MS });
  if (vetted.size > MAX_PINS) vetted.delete(vetted.keys().next().value!);
  return pinRemote(url, addresses);
}

/**
 * `url` with git held to `addresses`: for http(s), curl's own resolve list
 * (`http.curloptResolve`, git 2.37 and later), which keeps the host name for TLS and for the
 * Host header; for git://, the address in place of the name, as git's daemon protocol has no
 * such option.
 * See https://git-scm.com/docs/git-config#Documentation/git-config.txt-httpcurloptResolve
 */
export function pinRemote(url: URL, addresses: readonly string[]): PinnedRemote {
  const literal = (address: string) => (isIPv6(address) ? `[${address}]` : address);
  if (url.protocol === 'git:') {
    const pinned = new URL(url.href);
    pinned.hostname = literal(addresses[0]!);
    return { url: pinned.href, config: {} };
  }
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return {
    url: url.href,
    config: {
      'http.curloptResolve': `${url.hostname}:${port}:${addresses.map(literal).join(',')}`,
    },
  };
}

/**
 * The remote for a git command on `url`: checked and pinned now when `guard` is given, else
 * pinned to what the guard answered for its host in this process lately, else as it is.
 */
export async function remoteFor(url: string, guard?: GitHostGuard): Promise<PinnedRemote> {
  const parsed = new URL(url);
  if (guard) return assertGitHostAllowed(parsed, guard.allowedHosts, guard.lookup);
  const host = parsed.hostname.toLowerCase();
  const pin = vetted.get(host);
  if (pin && pin.until > Date.now()) return pinRemote(parsed, pin.addresses);
  return { url, config: {} };
}
