import { NON_PUBLIC_IPV4 } from '../repos/address-ranges.js';

/** What sessions and builds on the sandbox network may reach, and from where. */
export interface EgressPolicy {
  /**
   * The Linux bridge of the sandbox network (`bindery0`), or `prefix+` for every bridge whose
   * name starts with prefix (the build networks, one per build).
   */
  bridge: string;
  /** TCP ports allowed to public addresses (BINDERY_EGRESS_PORTS). */
  ports: readonly number[];
  /** Private ranges allowed anyway, on the same ports (BINDERY_EGRESS_ALLOW_CIDRS). */
  allowCidrs: readonly string[];
  /** The host's own addresses: refused even where they are public. */
  hostAddresses: readonly string[];
  /** The resolvers Docker's embedded DNS forwards to (the host's /etc/resolv.conf). */
  resolvers: readonly string[];
  /** The network's IPv4 subnet, for the link-layer rules; none are installed without it. */
  subnet?: string;
  /**
   * TCP ports of the host itself the bridge may open: the builds' index forwarder
   * (BINDERY_BUILD_INDEX_PORT, only while an index has credentials). None by default.
   */
  hostPorts?: readonly number[];
}

/** The chain of Bindery's own for traffic leaving a sandbox bridge (or bridges: `BINDERY-bindb`). */
export const egressChain = (policy: Pick<EgressPolicy, 'bridge'>) =>
  `BINDERY-${policy.bridge.replace(/\+$/, '')}`.slice(0, 28);

const reject = ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'];

/**
 * The rules of the egress chain, in order: replies pass; DNS to the resolvers Docker's embedded
 * DNS uses; the listed ports to the allowed CIDRs; every private, loopback, link-local, CGNAT,
 * multicast and reserved range and the host's own addresses refused; the listed ports anywhere
 * else (the public internet); everything else refused.
 */
export function egressChainRules(policy: EgressPolicy): string[][] {
  const ports = policy.ports.join(',');
  const tcpPorts = ['-p', 'tcp', '-m', 'multiport', '--dports', ports];
  return [
    ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN'],
    ...policy.resolvers.flatMap((resolver) => [
      ['-d', `${resolver}/32`, '-p', 'udp', '--dport', '53', '-j', 'RETURN'],
      ['-d', `${resolver}/32`, '-p', 'tcp', '--dport', '53', '-j', 'RETURN'],
    ]),
    ...policy.allowCidrs.map((cidr) => ['-d', cidr, ...tcpPorts, '-j', 'RETURN']),
    ...[...NON_PUBLIC_IPV4, ...policy.hostAddresses.map((address) => `${address}/32`)].map(
      (cidr) => ['-d', cidr, ...reject],
    ),
    [...tcpPorts, '-j', 'RETURN'],
    reject,
  ];
}

/** A rule in one of the host's own chains that sends sandbox traffic to Bindery's rules. */
export interface HookRule {
  chain: 'DOCKER-USER' | 'INPUT' | 'FORWARD';
  args: string[];
}

/**
 * The rules in the host's chains: forwarded traffic from the bridge goes through the egress
 * chain; traffic from the bridge to the host itself is refused unless it answers the host or
 * goes to one of the policy's host ports (the index forwarder, which answers its own subnet only).
 * INPUT rules are listed in the order they must end up in (first is first).
 */
export function hookRules(policy: EgressPolicy): HookRule[] {
  return [
    { chain: 'DOCKER-USER', args: ['-i', policy.bridge, '-j', egressChain(policy)] },
    {
      chain: 'INPUT',
      args: [
        '-i',
        policy.bridge,
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'ACCEPT',
      ],
    },
    ...(policy.hostPorts?.length
      ? [
          {
            chain: 'INPUT' as const,
            args: [
              '-i',
              policy.bridge,
              '-p',
              'tcp',
              '-m',
              'multiport',
              '--dports',
              policy.hostPorts.join(','),
              '-j',
              'ACCEPT',
            ],
          },
        ]
      : []),
    { chain: 'INPUT', args: ['-i', policy.bridge, ...reject] },
  ];
}

/**
 * INPUT rules opening host ports to the bridge (`-A INPUT -i <bridge> -p tcp -m multiport
 * --dports …`, as `iptables -S INPUT` lists them) that the policy no longer has: a port left
 * open when the forwarder's port changed or the index lost its credentials.
 */
export function staleHostPortRules(listing: string, policy: EgressPolicy): string[][] {
  const current = hookRules(policy).map((rule) => rule.args.join(' '));
  return listing
    .split('\n')
    .filter((line) => line.startsWith(`-A INPUT -i ${policy.bridge} -p tcp -m multiport --dports `))
    .map((line) => line.slice('-A INPUT '.length))
    .filter((args) => /^-i \S+ -p tcp -m multiport --dports [\d,]+ -j ACCEPT$/.test(args))
    .filter((args) => !current.includes(args))
    .map((args) => args.split(' '));
}

/**
 * The ip6tables rules: no IPv6 in or out of a sandbox bridge at all. Sandbox networks have no
 * IPv6 and Docker turns it off inside their containers, but the host's end of the bridge keeps
 * its link-local address, and a build step (root, with NET_RAW) can write IPv6 frames by hand:
 * without these rules they reach every host service listening on `::`, past the IPv4 rules.
 */
export function ipv6Rules(policy: Pick<EgressPolicy, 'bridge'>): HookRule[] {
  return [
    { chain: 'INPUT', args: ['-i', policy.bridge, '-j', 'DROP'] },
    { chain: 'FORWARD', args: ['-i', policy.bridge, '-j', 'DROP'] },
    { chain: 'FORWARD', args: ['-o', policy.bridge, '-j', 'DROP'] },
  ];
}

/**
 * The ebtables rules: no ARP from one port of a sandbox bridge to another claims an address of
 * the network. Containers there never need each other's addresses (inter-container traffic is
 * off), and a build step with NET_RAW could otherwise claim the gateway's address towards
 * another build on the same network and receive its downloads. The host's own ARP is not
 * forwarded traffic and passes.
 */
export function linkRules(policy: Pick<EgressPolicy, 'subnet'>): HookRule[] {
  if (!policy.subnet) return [];
  return [{ chain: 'FORWARD', args: ['-p', 'ARP', '--arp-ip-src', policy.subnet, '-j', 'DROP'] }];
}
