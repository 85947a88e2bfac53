import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ForbiddenError, NotFoundError, UnavailableError } from '../errors.js';
import { isPublicAddress } from './address-ranges.js';

export type LookupAll = (hostname: string) => Promise<{ address: string }[]>;

const lookupAll: LookupAll = (hostname) => dnsLookup(hostname, { all: true });

/**
 * Refuses git hosts that resolve to loopback, private, link-local or other non-public
 * addresses (a launch URL must not reach into the operator's network), unless the host is
 * listed in BINDERY_GIT_ALLOWED_HOSTS. Every address the name resolves to must be public.
 */
export async function assertGitHostAllowed(
  url: URL,
  allowedHosts: readonly string[],
  lookup: LookupAll = lookupAll,
): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (allowedHosts.includes(host) || allowedHosts.includes(url.host.toLowerCase())) return;
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
  if (inside.length > 0) {
    throw new ForbiddenError(
      `The git host ${host} resolves to ${inside.join(', ')}, a private or local address; ` +
        `Bindery only clones from public hosts. An operator can allow it with ` +
        `BINDERY_GIT_ALLOWED_HOSTS=${host}.`,
    );
  }
}
