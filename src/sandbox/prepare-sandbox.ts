import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { BinderyError } from '../errors.js';
import type { EgressPolicy } from './egress-rules.js';
import { installFirewall, iptables, verifyFirewall, type Iptables } from './firewall.js';

/** Sessions are refused while the sandbox is not in place. */
export class SandboxError extends BinderyError {
  override readonly status = 503;
}

export interface Sandbox {
  /** The Docker network sessions and builds run on. */
  network: string;
  policy: EgressPolicy;
  /** Checks the firewall again (for /health); problems are sentences. */
  check(): Promise<{ ok: boolean; problems: string[] }>;
  /** Throws SandboxError unless sessions may start. */
  assertReady(): void;
}

/** The bridge of a sandbox network: `bindery0` for the default one, a short hash otherwise. */
export function bridgeFor(network: string): string {
  return network === 'bindery-sessions'
    ? 'bindery0'
    : `bnd${createHash('sha1').update(network).digest('hex').slice(0, 8)}`;
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
 * Puts the sandbox in place: the session network (inter-container traffic off) and the
 * firewall rules of DESIGN §5, installed and verified. When they cannot be installed, sessions
 * are refused with the reason, unless the operator opted out (BINDERY_SANDBOX_OPTOUT=1).
 */
export async function prepareSandbox(deps: {
  engine: ContainerEngine;
  config: Config;
  run?: Iptables;
  log?: (line: string) => void;
}): Promise<Sandbox> {
  const { engine, config, run = iptables, log = (line) => console.error(line) } = deps;
  const network = config.sandbox.network;
  const bridge = bridgeFor(network);
  await engine.ensureNetwork({
    name: network,
    bridge,
    interContainer: false,
    labels: { 'bindery.kind': 'session' },
  });
  const policy: EgressPolicy = {
    bridge,
    ports: config.egress.ports,
    allowCidrs: config.egress.allowCidrs,
    hostAddresses: hostAddresses(),
    resolvers: await hostResolvers(),
  };
  let problems: string[] = [];
  try {
    await installFirewall(policy, run);
    problems = await verifyFirewall(policy, run);
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
    network,
    policy,
    async check() {
      const found = await verifyFirewall(policy, run).catch((error: Error) => [error.message]);
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
  };
}
