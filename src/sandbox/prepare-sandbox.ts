import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { hasCredentials, indexForwarderPort, type Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { dockerElsewhere } from '../docker-connection.js';
import { defaultLog, type Logger } from '../log/create-log.js';
import { isPublicAddress } from '../repos/address-ranges.js';
import { createBuildNetworks, type BuildNetworks } from './build-networks.js';
import type { EgressPolicy } from './egress-rules.js';
import {
  ebtables,
  installFirewall,
  ip6tables,
  iptables,
  removeFirewall,
  verifyFirewall,
  type Iptables,
} from './firewall.js';
import { nodeFirewalls, resolversIn } from './node-firewalls.js';
import { SandboxError } from './sandbox-error.js';

export { SandboxError };

/** What sessions and the web app need of the sandbox. */
export interface Sandbox {
  /** The Docker network sessions run on. */
  network: string;
  /** The egress policy on the sessions' bridge. */
  policy: EgressPolicy;
  /**
   * Reads the firewall from the host again (for each launch and /health): the session network's,
   * the rules every build network shares, and each build network in flight, and on Swarm nodes
   * that take sessions their own (node-firewalls.ts); problems are sentences. `avoid` lists the
   * nodes whose rules are not in place, which take no session; `ok` is false when no node is
   * left. Calls made while a check runs share it.
   */
  check(): Promise<{ ok: boolean; problems: string[]; avoid?: string[] }>;
}

/** The sandbox as prepareSandbox puts it in place: the session network, and the build networks. */
export interface PreparedSandbox extends Sandbox {
  /**
   * The networks build steps run on, one per build: the same rules on bridges of their own, so
   * a build step (root, with NET_RAW) never shares a link with a session or another build,
   * where it could claim their addresses with forged ARP or see the traffic sent to them.
   */
  build: BuildNetworks;
  /** Removes Bindery's firewall rules, the session network and the build networks (`bindery sandbox --remove`). */
  remove(): Promise<void>;
}

/** The bridge of a sandbox network: `bindery0` and `bindery1` for the default ones, a short hash otherwise. */
export function bridgeFor(network: string): string {
  if (network === 'bindery-sessions') return 'bindery0';
  if (network === 'bindery-builds') return 'bindery1';
  return `bnd${createHash('sha1').update(network).digest('hex').slice(0, 8)}`;
}

/**
 * What the build networks of a session network are named after: `bindery-builds` for the default
 * one, each build's network being `bindery-builds-<id>` (before one network per build, the one
 * build network of all builds had this name).
 */
export function buildNetworkFor(sessionNetwork: string): string {
  return sessionNetwork === 'bindery-sessions' ? 'bindery-builds' : `${sessionNetwork}-builds`;
}

async function hostResolvers(): Promise<string[]> {
  return resolversIn(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
}

/**
 * The host's public IPv4 addresses. Its private ones are refused by the range rules already, and
 * they come and go with every Docker network (a build network's gateway is one): listing them
 * would make each start (or `bindery sandbox`) write a chain that another process, started
 * earlier, reads as altered.
 */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry && entry.family === 'IPv4' && isPublicAddress(entry.address))
    .map((entry) => entry!.address);
}

/**
 * Puts the sandbox in place: the session network (inter-container traffic off) and the firewall
 * rules of DESIGN §5 on its bridge and on every build bridge to come (one network per build,
 * made by `build.acquire()`), IPv6 and ARP between containers refused, installed and verified;
 * build networks left by a stopped worker are removed. When the rules cannot be installed,
 * sessions and builds are refused with the reason, unless the operator opted out
 * (BINDERY_SANDBOX_OPTOUT=1).
 */
export async function prepareSandbox(deps: {
  engine: ContainerEngine;
  config: Config;
  run?: Iptables;
  run6?: Iptables;
  runLink?: Iptables;
  /** The service's logger; the sandbox writes to its `sandbox` child. @defaultValue defaultLog() */
  log?: Logger;
}): Promise<PreparedSandbox> {
  const { engine, config, run = iptables, run6 = ip6tables, runLink = ebtables } = deps;
  const log = (deps.log ?? defaultLog()).child({ component: 'sandbox' });
  const shared = {
    ports: config.egress.ports,
    allowCidrs: config.egress.allowCidrs,
    hostAddresses: hostAddresses(),
    resolvers: await hostResolvers(),
  };
  const sessionBridge = bridgeFor(config.sandbox.network);
  const { subnet } = await engine.ensureNetwork({
    name: config.sandbox.network,
    bridge: sessionBridge,
    interContainer: false,
    labels: { 'bindery.kind': 'session' },
  });
  const sessions = {
    network: config.sandbox.network,
    policy: { bridge: sessionBridge, ...shared, ...(subnet ? { subnet } : {}) } as EgressPolicy,
  };
  const nodes = nodeFirewalls({
    engine,
    network: sessions.network,
    bridge: sessionBridge,
    policy: shared,
  });
  // Builds may open the index forwarder on their gateway, and nothing else of the host.
  const forwarderPort = indexForwarderPort(config.build);
  if (
    !forwarderPort &&
    config.build.indexPort === 0 &&
    (hasCredentials(config.build.pipIndexUrl) || hasCredentials(config.build.pipExtraIndexUrl))
  ) {
    log.warn(
      'BINDERY_BUILD_INDEX_PORT=0: the firewall cannot open a port not known in advance, so builds on the sandbox cannot reach the private package index; set a port.',
    );
  }
  const build = createBuildNetworks({
    engine,
    prefix: buildNetworkFor(config.sandbox.network),
    policy: forwarderPort ? { ...shared, hostPorts: [forwarderPort] } : shared,
    run,
    run6,
    runLink,
    optOut: config.sandbox.optOut,
    // No build lasts longer than its clone and build limits; a network older is nobody's.
    maxAgeMs: config.git.cloneTimeoutMs + config.build.timeoutMs + 600_000,
    log,
  });
  /** Every problem, each naming the network (or networks) it is on. */
  // The firewall is this machine's iptables: a daemon on another machine would run without it.
  const elsewhere = dockerElsewhere(config.docker.host);
  const verify = async () => {
    if (elsewhere) return [elsewhere];
    const found = await verifyFirewall(sessions.policy, run, run6, runLink).catch(
      (error: Error) => [error.message],
    );
    return [...found.map((problem) => `${sessions.network}: ${problem}`), ...(await build.check())];
  };
  let problems: string[] = [];
  try {
    await installFirewall(sessions.policy, run, run6, runLink);
    await installFirewall(build.policy, run, run6, runLink);
    problems = await verify();
  } catch (error) {
    problems = [`the firewall could not be installed: ${(error as Error).message.split('\n')[0]}`];
  }
  const nodeProblems = await nodes.install();
  if (nodeProblems.length > 0) {
    log.error(
      `sandbox not in place on session nodes, which take no session: ${nodeProblems.join('; ')}`,
    );
  }
  // The one build network of all builds, from before each build had its own.
  const [single] = (await engine.listNetworks('bindery.kind=build')).filter(
    (found) => found.name === build.prefix,
  );
  if (single) {
    // Removed first: while an older worker still builds on it, it and its rules stay.
    await engine
      .removeNetwork(single.name)
      .then(() =>
        removeFirewall(
          { ...shared, bridge: single.bridge, subnet: single.subnet },
          run,
          run6,
          runLink,
        ),
      )
      .catch((error: Error) =>
        log.warn(`the old build network ${single.name} stays: ${error.message}`),
      );
  }
  const leftovers = await build.removeLeftovers();
  if (leftovers.length > 0)
    log.info(`removed build networks left by a stopped worker: ${leftovers.join(', ')}`);
  if (problems.length > 0 && config.sandbox.optOut) {
    log.warn(
      `BINDERY_SANDBOX_OPTOUT=1: sessions and builds run WITHOUT the egress firewall (${problems.join('; ')})`,
    );
  } else if (problems.length > 0) {
    log.error(`sandbox not in place, sessions and builds are refused: ${problems.join('; ')}`);
  }
  let checking: ReturnType<Sandbox['check']> | undefined;
  return {
    network: sessions.network,
    policy: sessions.policy,
    build,
    check() {
      // Twenty launches at once read the rules once (each read runs a few dozen iptables -C).
      checking ??= Promise.all([verify(), nodes.check()])
        .then(([found, onNodes]) => ({
          ok: (found.length === 0 && onNodes.placeable) || config.sandbox.optOut,
          problems: [...found, ...onNodes.problems],
          ...(onNodes.avoid.length > 0 && !config.sandbox.optOut ? { avoid: onNodes.avoid } : {}),
        }))
        .finally(() => (checking = undefined));
      return checking;
    },
    async remove() {
      await build.removeLeftovers(true);
      await removeFirewall(build.policy, run, run6, runLink);
      await removeFirewall(sessions.policy, run, run6, runLink);
      await nodes.remove();
      await engine.removeNetwork(sessions.network);
    },
  };
}
