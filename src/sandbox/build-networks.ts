import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ContainerEngine } from '../engine/container-engine.js';
import type { Logger } from '../log/create-log.js';
import { linkRules, type EgressPolicy } from './egress-rules.js';
import { hasRule, verifyFirewall, type Iptables } from './firewall.js';
import { SandboxError } from './sandbox-error.js';

/** The label every build network carries, valued with the name its networks start with. */
export const BUILD_NETWORK_LABEL = 'bindery.build-network';
/** Which process made a build network: `<host name>:<pid>`. */
const OWNER_LABEL = 'bindery.owner';

/** A network of one build, on its own bridge, behind the build networks' rules. */
export interface BuildNetwork {
  network: string;
  bridge: string;
  subnet: string;
  /** Removes its ARP rule and the network; call it once the build has ended, however it ended. */
  release(): Promise<void>;
}

/**
 * One network per build: a build step (root, with Docker's NET_RAW) is alone on its link, so
 * the ARP it forges reaches only the host's end of its own bridge, where no other build's
 * address is routed. The egress rules are installed once for every build bridge at start
 * (their names share a prefix, and iptables' `-i prefix+` matches them all); each network adds
 * only its ebtables ARP rule, which names its subnet.
 */
export interface BuildNetworks {
  /** What every build network's name starts with (`bindery-builds`). */
  prefix: string;
  /** The egress policy of every build bridge: `bridge` is the wildcard `<bridge prefix>+`. */
  policy: EgressPolicy;
  /**
   * Checks the build bridges' rules, then makes a network for one build. Rejects with
   * SandboxError, naming what is missing and how to put it back, when the rules are not in place.
   */
  acquire(): Promise<BuildNetwork>;
  /** The networks of builds under way in this process. */
  inFlight(): string[];
  /** What is missing of the shared rules and of each network in flight; sentences. */
  check(): Promise<string[]>;
  /**
   * Removes build networks (with their ARP rules) that no build uses any more: those made by a
   * process of this host that is gone, and any older than `maxAgeMs`. `all` removes every one.
   */
  removeLeftovers(all?: boolean): Promise<string[]>;
}

/** The bridge names of a build network prefix's networks start with this (`bindb` for the default). */
export function buildBridgePrefix(prefix: string): string {
  if (prefix === 'bindery-builds') return 'bindb';
  return `bb${createHash('sha1').update(prefix).digest('hex').slice(0, 5)}`;
}

/** Whether process `pid` of this host runs (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The build networks of one sandbox: `policy`'s rules are for the caller to install (once, at
 * start, as prepareSandbox does); this makes, checks and removes the networks themselves.
 */
export function createBuildNetworks(deps: {
  engine: ContainerEngine;
  prefix: string;
  /** The sessions' policy without bridge and subnet: ports, allowed CIDRs, host addresses. */
  policy: Omit<EgressPolicy, 'bridge' | 'subnet'>;
  run: Iptables;
  run6: Iptables;
  runLink: Iptables;
  /** Builds start even when the rules are missing (BINDERY_SANDBOX_OPTOUT=1). */
  optOut: boolean;
  /** A network older than this is a leftover whoever made it (the longest a build may take). */
  maxAgeMs: number;
  /** The sandbox's logger. */
  log: Logger;
  /** Tries and milliseconds between them, removing a network Docker still holds. @defaultValue 40, 250 */
  removeTries?: { count: number; delayMs: number };
}): BuildNetworks {
  const { engine, prefix, run, run6, runLink, optOut, maxAgeMs, log } = deps;
  const bridgePrefix = buildBridgePrefix(prefix);
  const policy: EgressPolicy = { ...deps.policy, bridge: `${bridgePrefix}+` };
  const owner = `${hostname()}:${process.pid}`;
  const inFlight = new Map<string, { bridge: string; subnet: string }>();
  const { count: tries, delayMs } = deps.removeTries ?? { count: 40, delayMs: 250 };

  const addArpRule = async (subnet: string) => {
    for (const rule of linkRules({ subnet })) {
      if (!(await hasRule(runLink, rule.chain, rule.args)))
        await runLink(['-I', rule.chain, '1', ...rule.args]);
    }
  };
  const removeArpRule = async (subnet: string) => {
    for (const rule of linkRules({ subnet })) {
      while (await hasRule(runLink, rule.chain, rule.args))
        await runLink(['-D', rule.chain, ...rule.args]);
    }
  };
  const missingArpRule = async (subnet: string) => {
    const problems: string[] = [];
    for (const rule of linkRules({ subnet })) {
      if (!(await hasRule(runLink, rule.chain, rule.args)))
        problems.push(`ebtables ${rule.chain} lacks: ${rule.args.join(' ')}`);
    }
    return problems;
  };
  /** Removes a network, waiting while Docker still removes the build's last container. */
  const removeNetwork = async (network: string, subnet: string) => {
    if (subnet) await removeArpRule(subnet);
    for (let attempt = 1; ; attempt++) {
      try {
        return await engine.removeNetwork(network);
      } catch (error) {
        if (attempt >= tries) throw error;
        await pause(delayMs);
      }
    }
  };
  /** The shared rules: the chain, its hooks, the IPv6 drops (the ARP rule is each network's). */
  const sharedProblems = () =>
    verifyFirewall(policy, run, run6, runLink).catch((error: Error) => [error.message]);

  return {
    prefix,
    policy,
    inFlight: () => [...inFlight.keys()],

    async check() {
      const problems = (await sharedProblems()).map((problem) => `${prefix}-*: ${problem}`);
      for (const [network, { subnet }] of inFlight) {
        problems.push(...(await missingArpRule(subnet)).map((problem) => `${network}: ${problem}`));
      }
      return problems;
    },

    async acquire() {
      const problems = await sharedProblems();
      if (problems.length > 0 && !optOut) {
        throw new SandboxError(
          `This build was not started: the build network's firewall is not in place (${problems.join('; ')}). ` +
            'Restart `bindery serve` or `bindery worker`, or run `bindery sandbox` as root, to put it back.',
        );
      }
      const id = randomBytes(4).toString('hex');
      const network = `${prefix}-${id}`;
      const bridge = `${bridgePrefix}${id}`;
      const { subnet } = await engine.ensureNetwork({
        name: network,
        bridge,
        interContainer: false,
        labels: { 'bindery.kind': 'build', [BUILD_NETWORK_LABEL]: prefix, [OWNER_LABEL]: owner },
      });
      inFlight.set(network, { bridge, subnet });
      let released: Promise<void> | undefined;
      const release = () =>
        (released ??= removeNetwork(network, subnet).finally(() => inFlight.delete(network)));
      try {
        if (!subnet) throw new SandboxError(`The build network ${network} got no IPv4 subnet.`);
        const missing = await addArpRule(subnet).then(
          () => missingArpRule(subnet),
          (error: Error) => [error.message.split('\n')[0]!],
        );
        if (missing.length > 0 && !optOut) {
          throw new SandboxError(
            `This build was not started: its network's ARP rule could not be installed (${missing.join('; ')}). ` +
              'Run Bindery as root (it installs ebtables rules), and make sure ebtables is installed.',
          );
        }
      } catch (error) {
        await release().catch(() => {});
        throw error;
      }
      return { network, bridge, subnet, release };
    },

    async removeLeftovers(all = false) {
      const removed: string[] = [];
      const [host] = owner.split(':');
      for (const found of await engine.listNetworks(`${BUILD_NETWORK_LABEL}=${prefix}`)) {
        if (inFlight.has(found.name)) continue;
        const [madeOn, pid] = (found.labels[OWNER_LABEL] ?? '').split(':');
        // Our own pid on our own host, yet not ours in flight: a previous process (a container's
        // pid 1, restarted) made it.
        const orphaned = madeOn === host && (Number(pid) === process.pid || !alive(Number(pid)));
        const old = Date.now() - found.created.getTime() > maxAgeMs;
        if (!all && !orphaned && !old) continue;
        try {
          await removeNetwork(found.name, found.subnet);
          removed.push(found.name);
        } catch (error) {
          log.warn(
            `the leftover build network ${found.name} could not be removed: ${(error as Error).message}`,
          );
        }
      }
      return removed;
    },
  };
}
