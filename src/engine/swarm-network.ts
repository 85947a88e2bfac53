import type { NetworkSpec } from './container-engine.js';

/** What Docker's network inspection gives, as far as the sessions' swarm network needs it. */
export interface NetworkInfo {
  Name: string;
  Scope?: string;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network?: string };
  Options?: Record<string, string> | null;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] | null } | null;
}

/** The config-only network a swarm-scoped session network takes its bridge settings from. */
export const configNetworkFor = (network: string) => `${network}-config`;

/** The first IPv4 subnet and gateway of a network; empty strings when it has none. */
export function subnetOf(network: NetworkInfo | undefined): { subnet: string; gateway: string } {
  const ipam = (network?.IPAM?.Config ?? []).find(
    (config) => config.Subnet && !config.Subnet.includes(':'),
  );
  return { subnet: ipam?.Subnet ?? '', gateway: ipam?.Gateway ?? '' };
}

/**
 * Why an existing sessions' network cannot carry Swarm sessions behind the sandbox, as a
 * sentence saying how to fix it; undefined when it can: swarm-scoped, made from its own
 * config-only network, whose bridge name and inter-container setting are the spec's.
 */
export function sessionNetworkProblem(
  spec: Pick<NetworkSpec, 'name' | 'bridge' | 'interContainer'>,
  network: NetworkInfo | undefined,
  config: NetworkInfo | undefined,
): string | undefined {
  const configName = configNetworkFor(spec.name);
  const remove = `Remove it (docker network rm ${spec.name} ${configName}) and start again.`;
  if (!network) return `The Docker network ${spec.name} could not be made.`;
  if (network.Scope !== 'swarm' || network.ConfigFrom?.Network !== configName) {
    return (
      `The Docker network ${spec.name} exists as a ${network.Scope ?? 'local'}-scoped network` +
      `${network.ConfigFrom?.Network ? ` made from ${network.ConfigFrom.Network}` : ''}; Swarm sessions need a ` +
      `swarm-scoped bridge made from the config-only network ${configName}. ` +
      `${remove} (Or give BINDERY_SESSION_NETWORK another name for Swarm sessions.)`
    );
  }
  if (!config?.ConfigOnly) {
    return `The config-only network ${configName} that ${spec.name} is made from is missing on this node. ${remove}`;
  }
  const options = config.Options ?? {};
  const bridge = options['com.docker.network.bridge.name'];
  const icc = options['com.docker.network.bridge.enable_icc'] ?? 'true';
  if (bridge !== spec.bridge || icc !== String(spec.interContainer)) {
    return (
      `The config-only network ${configName} has bridge ${bridge ?? '(default)'} and inter-container traffic ${icc}; ` +
      `Bindery needs bridge ${spec.bridge} and ${spec.interContainer}. ${remove}`
    );
  }
  if (!subnetOf(config).subnet) {
    return `The config-only network ${configName} has no IPv4 subnet, which the sandbox's link rules need. ${remove}`;
  }
  return undefined;
}
