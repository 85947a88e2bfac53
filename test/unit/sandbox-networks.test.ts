import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import type { ContainerEngine, NetworkSpec } from '../../src/engine/container-engine.js';
import { ipv6Rules } from '../../src/sandbox/egress-rules.js';
import type { Iptables } from '../../src/sandbox/firewall.js';
import { bridgeFor, buildNetworkFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';

/** An in-memory iptables: rules per chain, answering -C, -I, -D, -S, -F, -X and restore input. */
function fakeIptables(): Iptables & { rules: Map<string, string[]> } {
  const rules = new Map<string, string[]>();
  const chain = (name: string) => rules.get(name) ?? (rules.set(name, []).get(name) as string[]);
  const run = async (args: string[], input?: string) => {
    if (input !== undefined) {
      for (const line of input.split('\n')) {
        const created = /^:(\S+)/.exec(line);
        if (created) rules.set(created[1]!, []);
        const added = /^-A (\S+) (.*)$/.exec(line);
        if (added) chain(added[1]!).push(added[2]!.replace(/"/g, ''));
      }
      return '';
    }
    const [op, name = '', ...rest] = args;
    const rule = (op === '-I' ? rest.slice(1) : rest).join(' ');
    switch (op) {
      case '-C':
      case '--check':
        if (!chain(name).includes(rule)) throw new Error('Bad rule');
        return '';
      case '-I':
        chain(name).unshift(rule);
        return '';
      case '-D':
        chain(name).splice(chain(name).indexOf(rule), 1);
        return '';
      case '-S':
        return chain(name)
          .map((r) => `-A ${name} ${r}\n`)
          .join('');
      default:
        if (op === '-X') rules.delete(name);
        if (op === '-F') rules.set(name, []);
        return '';
    }
  };
  return Object.assign(run, { rules });
}

function fakeEngine(): ContainerEngine & { networks: NetworkSpec[]; removed: string[] } {
  const networks: NetworkSpec[] = [];
  const removed: string[] = [];
  return {
    networks,
    removed,
    ensureNetwork: async (spec: NetworkSpec) => {
      networks.push(spec);
      const n = 29 + networks.length;
      return { subnet: `172.${n}.0.0/16`, gateway: `172.${n}.0.1` };
    },
    removeNetwork: async (name: string) => {
      removed.push(name);
    },
  } as unknown as ContainerEngine & { networks: NetworkSpec[]; removed: string[] };
}

describe('the build network', () => {
  it('goes with the session network, on a bridge of its own', () => {
    expect(buildNetworkFor('bindery-sessions')).toBe('bindery-builds');
    expect(bridgeFor('bindery-builds')).toBe('bindery1');
    expect(buildNetworkFor('bindery-test-1')).toBe('bindery-test-1-builds');
    expect(bridgeFor('bindery-test-1-builds')).toMatch(/^bnd[0-9a-f]{8}$/);
    expect(bridgeFor('bindery-test-1-builds')).not.toBe(bridgeFor('bindery-test-1'));
  });

  it('is made beside the session network, inter-container traffic off, with the same rules', async () => {
    const engine = fakeEngine();
    const run = fakeIptables();
    const run6 = fakeIptables();
    const runLink = fakeIptables();
    const config = loadConfig({ BINDERY_EGRESS_ALLOW_CIDRS: '10.250.0.0/24' });
    const sandbox = await prepareSandbox({ engine, config, run, run6, runLink, log: () => {} });
    expect(engine.networks).toEqual([
      {
        name: 'bindery-sessions',
        bridge: 'bindery0',
        interContainer: false,
        labels: { 'bindery.kind': 'session' },
      },
      {
        name: 'bindery-builds',
        bridge: 'bindery1',
        interContainer: false,
        labels: { 'bindery.kind': 'build' },
      },
    ]);
    expect(sandbox.network).toBe('bindery-sessions');
    expect(sandbox.build.network).toBe('bindery-builds');
    expect(sandbox.build.policy).toEqual({
      ...sandbox.policy,
      bridge: 'bindery1',
      subnet: '172.31.0.0/16',
    });
    // No ARP between containers on either network claims an address of that network.
    expect(runLink.rules.get('FORWARD')).toEqual([
      '-p ARP --arp-ip-src 172.31.0.0/16 -j DROP',
      '-p ARP --arp-ip-src 172.30.0.0/16 -j DROP',
    ]);
    expect(run.rules.get('BINDERY-bindery1')).toEqual(
      run.rules.get('BINDERY-bindery0')!.map((rule) => rule.replace('bindery0', 'bindery1')),
    );
    expect(run.rules.get('DOCKER-USER')).toEqual([
      '-i bindery1 -j BINDERY-bindery1',
      '-i bindery0 -j BINDERY-bindery0',
    ]);
    expect(await sandbox.check()).toEqual({ ok: true, problems: [] });
    expect(() => sandbox.assertReady()).not.toThrow();
  });

  it('is checked like the session network: a missing rule of it fails the check, naming it', async () => {
    const run = fakeIptables();
    const run6 = fakeIptables();
    const runLink = fakeIptables();
    const sandbox = await prepareSandbox({
      engine: fakeEngine(),
      config: loadConfig({}),
      run,
      run6,
      runLink,
      log: () => {},
    });
    await runLink(['-D', 'FORWARD', '-p', 'ARP', '--arp-ip-src', '172.31.0.0/16', '-j', 'DROP']);
    await run(['-D', 'DOCKER-USER', '-i', 'bindery1', '-j', 'BINDERY-bindery1']);
    await run6(['-D', 'FORWARD', '-o', 'bindery1', '-j', 'DROP']);
    expect(await sandbox.check()).toEqual({
      ok: false,
      problems: [
        'bindery-builds: DOCKER-USER lacks: -i bindery1 -j BINDERY-bindery1',
        'bindery-builds: ip6tables FORWARD lacks: -o bindery1 -j DROP',
        'bindery-builds: ebtables FORWARD lacks: -p ARP --arp-ip-src 172.31.0.0/16 -j DROP',
      ],
    });
  });

  it('goes with the sandbox on remove: rules of both bridges, then both networks', async () => {
    const engine = fakeEngine();
    const run = fakeIptables();
    const run6 = fakeIptables();
    const runLink = fakeIptables();
    const sandbox = await prepareSandbox({ engine, config: loadConfig({}), run, run6, runLink });
    await sandbox.remove();
    expect(engine.removed).toEqual(['bindery-sessions', 'bindery-builds']);
    expect([...run.rules.keys()].filter((chain) => chain.startsWith('BINDERY-'))).toEqual([]);
    expect(run.rules.get('DOCKER-USER')).toEqual([]);
    expect([...run6.rules.values()].flat()).toEqual([]);
    expect([...runLink.rules.values()].flat()).toEqual([]);
  });
});

describe('IPv6', () => {
  it('is dropped in and out of a sandbox bridge, for the host and for forwarding', () => {
    expect(ipv6Rules({ bridge: 'bindery1' })).toEqual([
      { chain: 'INPUT', args: ['-i', 'bindery1', '-j', 'DROP'] },
      { chain: 'FORWARD', args: ['-i', 'bindery1', '-j', 'DROP'] },
      { chain: 'FORWARD', args: ['-o', 'bindery1', '-j', 'DROP'] },
    ]);
  });

  it('rules are installed once for each bridge, first in their chains', async () => {
    const run6 = fakeIptables();
    await run6(['-I', 'INPUT', '1', '-i', 'lo', '-j', 'ACCEPT']);
    const config = loadConfig({});
    await prepareSandbox({
      engine: fakeEngine(),
      config,
      run: fakeIptables(),
      run6,
      runLink: fakeIptables(),
    });
    await prepareSandbox({
      engine: fakeEngine(),
      config,
      run: fakeIptables(),
      run6,
      runLink: fakeIptables(),
    });
    expect(run6.rules.get('INPUT')).toEqual([
      '-i bindery1 -j DROP',
      '-i bindery0 -j DROP',
      '-i lo -j ACCEPT',
    ]);
  });
});
