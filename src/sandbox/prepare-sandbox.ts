import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { BinderyError } from '../errors.js';
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

/** Sessions are refused while the sandbox is not in place. */
export class SandboxError extends BinderyError {
  override readonly status = 503;
}

/** One network of the sandbox and the egress policy on its bridge. */
export interface SandboxNetwork {
  /** The Docker network's name. */
  network: string;
  policy: EgressPolicy;
}

/** What sessions and the web app need of the sandbox. */
export interface Sandbox {
  /** The Docker network sessions run on. */
  network: string;
  /** The egress policy on the sessions' bridge. */
  policy: EgressPolicy;
  /** Checks the firewall of every sandbox network again (for /health); problems are sentences. */
  check(): Promise<{ ok: boolean; problems: string[] }>;
  /** Throws SandboxError unless sessions may start. */
  assertReady(): void;
}

/** The sandbox as prepareSandbox puts it in place: the session network, and the build network. */
export interface PreparedSandbox extends Sandbox {
  /**
   * The network build steps run on: the same rules on a bridge of its own, so a build step
   * (root, with NET_RAW) never shares a link with sessions, where it could claim their
   * addresses with forged ARP or see the proxy's and the culler's requests to them.
   */
  build: SandboxNetwork;
  /** Removes Bindery's firewall rules and both networks (`bindery sandbox --remove`). */
  remove(): Promise<void>;
}

/** The bridge of a sandbox network: `bindery0` and `bindery1` for the default ones, a short hash otherwise. */
export function bridgeFor(network: string): string {
  if (network === 'bindery-sessions') return 'bindery0';
  if (network === 'bindery-builds') return 'bindery1';
  return `bnd${createHash('sha1').update(network).digest('hex').slice(0, 8)}`;
}

/** The build network that goes with a session network: `bindery-builds` for the default one. */
export function buildNetworkFor(sessionNetwork: string): string {
  return sessionNetwork === 'bindery-sessions' ? 'bindery-builds' : `${sessionNetwork}-builds`;
}

async function hostResolvers(): Promise<string[]> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return [...text.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]!).filter((ip) => isIPv4(ip));
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry && entry.family === 'IPv4')
    .map((entry) => entry!.address);
}

/**
 * Puts the sandbox in place: the session network and the build network (inter-container
 * traffic off on both) and the firewall rules of DESIGN §5 on each bridge, IPv6 and ARP
 * between containers refused, installed and verified. When they cannot be installed, sessions
 * are refused with the reason, unless the operator opted out (BINDERY_SANDBOX_OPTOUT=1).
 */
export async function prepareSandbox(deps: {
  engine: ContainerEngine;
  config: Config;
  run?: Iptables;
  run6?: Iptables;
  runLink?: Iptables;
  log?: (line: string) => void;
}): Promise<PreparedSandbox> {
  const { engine, config, run = iptables, run6 = ip6tables, runLink = ebtables } = deps;
  const log = deps.log ?? ((line: string) => console.error(line));
  const shared = {
    ports: config.egress.ports,
    allowCidrs: config.egress.allowCidrs,
    hostAddresses: hostAddresses(),
    resolvers: await hostResolvers(),
  };
  const networks: SandboxNetwork[] = [];
  for (const [network, kind] of [
    [config.sandbox.network, 'session'],
    [buildNetworkFor(config.sandbox.network), 'build'],
  ] as const) {
    const bridge = bridgeFor(network);
    const { subnet } = await engine.ensureNetwork({
      name: network,
      bridge,
      interContainer: false,
      labels: { 'bindery.kind': kind },
    });
    networks.push({ network, policy: { bridge, ...shared, ...(subnet ? { subnet } : {}) } });
  }
  const [sessions, builds] = networks as [SandboxNetwork, SandboxNetwork];
  /** Every problem of every network, each naming the network it is on. */
  const verify = async () => {
    const problems: string[] = [];
    for (const { network, policy } of networks) {
      const found = await verifyFirewall(policy, run, run6, runLink).catch((error: Error) => [
        error.message,
      ]);
      problems.push(...found.map((problem) => `${network}: ${problem}`));
    }
    return problems;
  };
  let problems: string[] = [];
  try {
    for (const { policy } of networks) await installFirewall(policy, run, run6, runLink);
    problems = await verify();
  } catch (error) {
    problems = [`the firewall could not be installed: ${(error as Error).message.split('\n')[0]}`];
  }
  if (problems.length > 0 && config.sandbox.optOut) {
    log(
      `WARNING: BINDERY_SANDBOX_OPTOUT=1: sessions run WITHOUT the egress firewall (${problems.join('; ')})`,
    );
  } else if (problems.length > 0) {
    log(`sandbox not in place, sessions are refused: ${problems.join('; ')}`);
  }
  let ready = problems.length === 0;
  return {
    network: sessions.network,
    policy: sessions.policy,
    build: builds,
    async check() {
      const found = await verify();
      ready = found.length === 0;
      return { ok: ready || config.sandbox.optOut, problems: found };
    },
    assertReady() {
      if (ready || config.sandbox.optOut) return;
      throw new SandboxError(
        `Sessions are refused: the sandbox's firewall is not in place (${problems.join('; ')}). ` +
          'Run Bindery as root (it installs iptables rules), or set BINDERY_SANDBOX_OPTOUT=1 for development only.',
      );
    },
    async remove() {
      for (const { network, policy } of networks) {
        await removeFirewall(policy, run, run6, runLink);
        await engine.removeNetwork(network);
      }
    },
  };
}
