import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Address ranges that are not the public internet: loopback, RFC 1918, CGNAT, link-local
 * (the cloud metadata address 169.254.169.254 among them), multicast, documentation and
 * reserved blocks, and their IPv6 counterparts. Git clones and session egress refuse them.
 */
export const NON_PUBLIC_IPV4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];

export const NON_PUBLIC_IPV6 = [
  // Deprecated IPv4-compatible addresses (::a.b.c.d), :: and ::1 among them.
  '::/96',
  '100::/64',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
];

const nonPublic = new BlockList();
for (const cidr of NON_PUBLIC_IPV4) addCidr(nonPublic, cidr);
for (const cidr of NON_PUBLIC_IPV6) addCidr(nonPublic, cidr);

function addCidr(list: BlockList, cidr: string): void {
  const [network, bits] = cidr.split('/');
  list.addSubnet(network!, Number(bits), isIPv4(network!) ? 'ipv4' : 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address. */
function embeddedIPv4(address: string): string | undefined {
  const match = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (match) return match[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** True when `address` (IPv4 or IPv6) is on the public internet. */
export function isPublicAddress(address: string): boolean {
  if (isIPv4(address)) return !nonPublic.check(address, 'ipv4');
  if (!isIPv6(address)) throw new TypeError(`${address} is not an IP address`);
  const inner = embeddedIPv4(address);
  if (inner) return isPublicAddress(inner);
  return !nonPublic.check(address, 'ipv6');
}
