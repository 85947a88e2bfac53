import { isIPv4 } from 'node:net';
import type { ContainerEngine, SessionHost } from '../engine/container-engine.js';
import { configNetworkFor } from '../engine/swarm-network.js';
import { isPublicAddress } from '../repos/address-ranges.js';
import type { EgressPolicy } from './egress-rules.js';
import {
  firewallTools,
  installFirewall,
  removeFirewall,
  verifyFirewall,
  type FirewallTools,
} from './firewall.js';

/** How long a reading of the session nodes and their firewalls stands for launches (reading a node's through its daemon takes ~0.4 s). */
const CHECK_TTL_MS = 10_000;

/** The IPv4 nameservers a resolv.conf lists. */
export function resolversIn(resolvConf: string): string[] {
  return [...resolvConf.matchAll(/^nameserver\s+(\S+)/gm)]
    .map((m) => m[1]!)
    .filter((ip) => isIPv4(ip));
}

/** What the sandbox's firewall on the session nodes found: each problem names its node. */
export interface NodeCheck {
  problems: string[];
  /** Ids of the nodes whose firewall is not in place, which take no session. */
  avoid: string[];
  /** Whether a node is left to take sessions (true when sessions stay on this host). */
  placeable: boolean;
}

/**
 * The sandbox's firewall on the machines a Swarm places sessions on (engine.sessionHosts():
 * the nodes labelled to take sessions): the session network's rules, for the bridge and the
 * subnet it has on each node, with that node's own public addresses and nameservers, installed
 * and read through the node's daemon. Nodes are listed again at each check, so a node labelled
 * later is checked (and set aside until `bindery sandbox` installs its rules).
 */
export function nodeFirewalls(deps: {
  engine: ContainerEngine;
  network: string;
  bridge: string;
  policy: Pick<EgressPolicy, 'ports' | 'allowCidrs'>;
  now?: () => number;
}) {
  const { engine, network, bridge, now = Date.now } = deps;
  let last: { at: number; check: Promise<NodeCheck> } | undefined;

  /** The node's policy, or why it has none. */
  const policyOf = async (host: SessionHost): Promise<EgressPolicy | string> => {
    if (!host.subnet) {
      return (
        `it has no config-only network ${configNetworkFor(network)} with a subnet of its own for the sessions' bridge; ` +
        `make one there (README, Sessions on Docker Swarm), then run bindery sandbox`
      );
    }
    const [resolvConf, addresses] = await Promise.all([
      host.run(['cat', '/etc/resolv.conf']),
      host.run(['ip', '-4', '-o', 'address', 'show']),
    ]);
    return {
      ...deps.policy,
      bridge,
      subnet: host.subnet,
      resolvers: resolversIn(resolvConf),
      hostAddresses: [...addresses.matchAll(/\sinet (\S+)\//g)]
        .map((m) => m[1]!)
        .filter(isPublicAddress),
    };
  };
  /** `act` on each session node with its policy and tools; the problems, each naming its node. */
  const onEach = async (act: (policy: EgressPolicy, tools: FirewallTools) => Promise<string[]>) =>
    Promise.all(
      (await engine.sessionHosts(network)).map(async (host) => {
        const problems = await policyOf(host)
          .then((policy) =>
            typeof policy === 'string' ? [policy] : act(policy, firewallTools(host.run)),
          )
          .catch((error: Error) => [error.message.split('\n')[0]!]);
        return {
          host,
          problems: problems.map((problem) => `node ${host.name} (${host.id}): ${problem}`),
        };
      }),
    );
  const verify = (policy: EgressPolicy, tools: FirewallTools) =>
    verifyFirewall(policy, tools.run, tools.run6, tools.runLink);

  return {
    /** Installs the rules on every session node, then reads them back; the problems left. */
    async install(): Promise<string[]> {
      last = undefined;
      const results = await onEach(async (policy, tools) => {
        await installFirewall(policy, tools.run, tools.run6, tools.runLink);
        return verify(policy, tools);
      });
      return results.flatMap(({ problems }) => problems);
    },

    /**
     * Lists the session nodes and reads their rules; a reading stands for CHECK_TTL_MS, and
     * calls meanwhile share it.
     */
    check(): Promise<NodeCheck> {
      if (!last || now() - last.at >= CHECK_TTL_MS) {
        const check = onEach(verify).then(
          (results) => {
            const avoid = results.filter(({ problems }) => problems.length > 0);
            return {
              problems: avoid.flatMap(({ problems }) => problems),
              avoid: avoid.map(({ host }) => host.id),
              placeable: results.length === 0 || avoid.length < results.length,
            };
          },
          (error: Error) => {
            // Not kept: the next check asks again.
            last = undefined;
            return {
              problems: [`the session nodes could not be listed: ${error.message}`],
              avoid: [],
              placeable: false,
            };
          },
        );
        last = { at: now(), check };
      }
      return last.check;
    },

    /** Removes the rules from every session node. */
    async remove(): Promise<void> {
      last = undefined;
      await onEach(async (policy, tools) => {
        await removeFirewall(policy, tools.run, tools.run6, tools.runLink);
        return [];
      });
    },
  };
}
