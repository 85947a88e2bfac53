import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { hostname } from 'node:os';
import type {
  ContainerEngine,
  NetworkFacts,
  NetworkSpec,
} from '../../src/engine/container-engine.js';
import { buildBridgePrefix } from '../../src/sandbox/build-networks.js';
import { ipv6Rules } from '../../src/sandbox/egress-rules.js';
import type { Iptables } from '../../src/sandbox/firewall.js';
import { captureLog, quietLog } from '../helpers/capture-log.js';
import {
  bridgeFor,
  buildNetworkFor,
  prepareSandbox,
  SandboxError,
} from '../../src/sandbox/prepare-sandbox.js';

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

function fakeEngine(): ContainerEngine & {
  networks: NetworkSpec[];
  removed: string[];
  existing: NetworkFacts[];
} {
  const networks: NetworkSpec[] = [];
  const removed: string[] = [];
  const existing: NetworkFacts[] = [];
  return {
    networks,
    removed,
    existing,
    ensureNetwork: async (spec: NetworkSpec) => {
      networks.push(spec);
      const n = 29 + networks.length;
      existing.push({
        name: spec.name,
        subnet: `172.${n}.0.0/16`,
        bridge: spec.bridge,
        created: new Date(),
        labels: spec.labels,
      });
      return { subnet: `172.${n}.0.0/16`, gateway: `172.${n}.0.1` };
    },
    removeNetwork: async (name: string) => {
      removed.push(name);
      existing.splice(
        existing.findIndex((network) => network.name === name),
        1,
      );
    },
    listNetworks: async (label: string) => {
      const [key = '', value] = label.split('=');
      return existing.filter((network) => network.labels[key] === value);
    },
    // One host: no Swarm nodes to keep a firewall on.
    sessionHosts: async () => [],
  } as unknown as ContainerEngine & {
    networks: NetworkSpec[];
    removed: string[];
    existing: NetworkFacts[];
  };
}

const firewall = () => ({ run: fakeIptables(), run6: fakeIptables(), runLink: fakeIptables() });

describe('the build networks', () => {
  it('go with the session network, on bridges of their own sharing a prefix', () => {
    expect(buildNetworkFor('bindery-sessions')).toBe('bindery-builds');
    expect(buildBridgePrefix('bindery-builds')).toBe('bindb');
    expect(buildNetworkFor('bindery-test-1')).toBe('bindery-test-1-builds');
    expect(buildBridgePrefix('bindery-test-1-builds')).toMatch(/^bb[0-9a-f]{5}$/);
    expect(bridgeFor('bindery-test-1')).not.toMatch(/^bb/);
  });

  it('get the same rules as the session network, once for every build bridge', async () => {
    const engine = fakeEngine();
    const { run, run6, runLink } = firewall();
    const config = loadConfig({ BINDERY_EGRESS_ALLOW_CIDRS: '10.250.0.0/24' });
    const sandbox = await prepareSandbox({ engine, config, run, run6, runLink, log: quietLog });
    // Only the session network exists until a build asks for one.
    expect(engine.networks).toEqual([
      {
        name: 'bindery-sessions',
        bridge: 'bindery0',
        interContainer: false,
        labels: { 'bindery.kind': 'session' },
      },
    ]);
    expect(sandbox.build.prefix).toBe('bindery-builds');
    expect(sandbox.build.policy).toEqual({
      ...sandbox.policy,
      bridge: 'bindb+',
      subnet: undefined,
    });
    expect(run.rules.get('BINDERY-bindb')).toEqual(run.rules.get('BINDERY-bindery0'));
    expect(run.rules.get('DOCKER-USER')).toEqual([
      '-i bindb+ -j BINDERY-bindb',
      '-i bindery0 -j BINDERY-bindery0',
    ]);
    expect(run6.rules.get('FORWARD')).toEqual([
      '-o bindb+ -j DROP',
      '-i bindb+ -j DROP',
      '-o bindery0 -j DROP',
      '-i bindery0 -j DROP',
    ]);
    expect(await sandbox.check()).toEqual({ ok: true, problems: [] });
  });

  it('are one per build, inter-container traffic off, each with its ARP rule, gone on release', async () => {
    const engine = fakeEngine();
    const { run, run6, runLink } = firewall();
    const sandbox = await prepareSandbox({
      engine,
      config: loadConfig({}),
      run,
      run6,
      runLink,
      log: quietLog,
    });
    const first = await sandbox.build.acquire();
    const second = await sandbox.build.acquire();
    expect(first.network).toMatch(/^bindery-builds-[0-9a-f]{8}$/);
    expect(first.bridge).toMatch(/^bindb[0-9a-f]{8}$/);
    expect(second.network).not.toBe(first.network);
    expect(engine.networks.slice(1)).toEqual([
      {
        name: first.network,
        bridge: first.bridge,
        interContainer: false,
        labels: {
          'bindery.kind': 'build',
          'bindery.build-network': 'bindery-builds',
          'bindery.owner': expect.stringMatching(/:\d+$/),
        },
      },
      expect.objectContaining({ name: second.network, bridge: second.bridge }),
    ]);
    expect(runLink.rules.get('FORWARD')).toEqual([
      `-p ARP --arp-ip-src ${second.subnet} -j DROP`,
      `-p ARP --arp-ip-src ${first.subnet} -j DROP`,
      '-p ARP --arp-ip-src 172.30.0.0/16 -j DROP',
    ]);
    expect(sandbox.build.inFlight()).toEqual([first.network, second.network]);
    await runLink(['-D', 'FORWARD', '-p', 'ARP', '--arp-ip-src', first.subnet, '-j', 'DROP']);
    expect((await sandbox.check()).problems).toEqual([
      `${first.network}: ebtables FORWARD lacks: -p ARP --arp-ip-src ${first.subnet} -j DROP`,
    ]);
    await first.release();
    await second.release();
    expect(engine.removed).toEqual([first.network, second.network]);
    expect(runLink.rules.get('FORWARD')).toEqual(['-p ARP --arp-ip-src 172.30.0.0/16 -j DROP']);
    expect(sandbox.build.inFlight()).toEqual([]);
  });

  it('are refused while a shared rule is missing, naming it and the fix, and nothing is made', async () => {
    const engine = fakeEngine();
    const { run, run6, runLink } = firewall();
    const sandbox = await prepareSandbox({
      engine,
      config: loadConfig({}),
      run,
      run6,
      runLink,
      log: quietLog,
    });
    await run(['-D', 'DOCKER-USER', '-i', 'bindb+', '-j', 'BINDERY-bindb']);
    await run6(['-D', 'FORWARD', '-o', 'bindb+', '-j', 'DROP']);
    const problems = [
      'DOCKER-USER lacks: -i bindb+ -j BINDERY-bindb',
      'ip6tables FORWARD lacks: -o bindb+ -j DROP',
    ];
    await expect(sandbox.build.acquire()).rejects.toThrow(
      new SandboxError(
        `This build was not started: the build network's firewall is not in place (${problems.join('; ')}). ` +
          'Restart `bindery serve` or `bindery worker`, or run `bindery sandbox` as root, to put it back.',
      ),
    );
    expect(engine.networks).toHaveLength(1);
    expect(await sandbox.check()).toEqual({
      ok: false,
      problems: problems.map((problem) => `bindery-builds-*: ${problem}`),
    });
    // `bindery sandbox` (or a restart) puts them back.
    await prepareSandbox({ engine, config: loadConfig({}), run, run6, runLink, log: quietLog });
    await (await sandbox.build.acquire()).release();
  });

  it('start without the rules only when the operator opted out, as sessions do', async () => {
    const denied: Iptables = async () => {
      throw new Error('Permission denied (you must be root)');
    };
    const { log, entries } = captureLog();
    const sandbox = await prepareSandbox({
      engine: fakeEngine(),
      config: loadConfig({ BINDERY_SANDBOX_OPTOUT: '1' }),
      run: denied,
      run6: denied,
      runLink: denied,
      log,
    });
    expect(entries()).toEqual([
      expect.objectContaining({
        level: 40,
        component: 'sandbox',
        msg: expect.stringMatching(/^BINDERY_SANDBOX_OPTOUT=1: sessions and builds run WITHOUT/),
      }),
    ]);
    const network = await sandbox.build.acquire();
    expect(network.network).toMatch(/^bindery-builds-/);
    await network.release();
  });

  it('left by a stopped process of this host are removed at start, with their ARP rules', async () => {
    const engine = fakeEngine();
    const { run, run6, runLink } = firewall();
    const config = loadConfig({});
    const gone = 2 ** 22 + 1; // above Linux's pid_max: no such process
    const hostName = hostname();
    for (const [name, owner, created] of [
      ['bindery-builds-0000dead', `${hostName}:${gone}`, new Date()],
      ['bindery-builds-00000old', 'elsewhere:1', new Date(Date.now() - 10 * 3600_000)],
      ['bindery-builds-0000live', `${hostName}:${process.ppid}`, new Date()],
      ['bindery-builds-00000far', 'elsewhere:1', new Date()],
    ] as const) {
      engine.existing.push({
        name,
        subnet: `10.${engine.existing.length}.0.0/24`,
        bridge: `bindb${name.slice(-8)}`,
        created,
        labels: { 'bindery.build-network': 'bindery-builds', 'bindery.owner': owner },
      });
      await runLink([
        '-I',
        'FORWARD',
        '1',
        '-p',
        'ARP',
        '--arp-ip-src',
        `10.${engine.existing.length - 1}.0.0/24`,
        '-j',
        'DROP',
      ]);
    }
    const { log, entries } = captureLog();
    const sandbox = await prepareSandbox({ engine, config, run, run6, runLink, log });
    expect(engine.removed).toEqual(['bindery-builds-0000dead', 'bindery-builds-00000old']);
    expect(entries()).toEqual([
      expect.objectContaining({
        level: 30,
        component: 'sandbox',
        msg: 'removed build networks left by a stopped worker: bindery-builds-0000dead, bindery-builds-00000old',
      }),
    ]);
    expect(runLink.rules.get('FORWARD')).toEqual([
      '-p ARP --arp-ip-src 172.30.0.0/16 -j DROP',
      '-p ARP --arp-ip-src 10.3.0.0/24 -j DROP',
      '-p ARP --arp-ip-src 10.2.0.0/24 -j DROP',
    ]);
    // `bindery sandbox --remove` takes every one, and the rules of all.
    await sandbox.remove();
    expect(engine.existing).toEqual([]);
    expect([...run.rules.keys()].filter((chain) => chain.startsWith('BINDERY-'))).toEqual([]);
    expect(run.rules.get('DOCKER-USER')).toEqual([]);
    expect([...run6.rules.values()].flat()).toEqual([]);
    expect([...runLink.rules.values()].flat()).toEqual([]);
  });

  it('replace the one build network of older versions, and its rules', async () => {
    const engine = fakeEngine();
    const { run, run6, runLink } = firewall();
    const config = loadConfig({});
    // What an older version left: bindery-builds on bindery1, with its rules.
    await prepareSandbox({ engine, config, run, run6, runLink, log: quietLog });
    engine.existing.push({
      name: 'bindery-builds',
      subnet: '172.31.0.0/16',
      bridge: 'bindery1',
      created: new Date(),
      labels: { 'bindery.kind': 'build' },
    });
    await run6(['-I', 'INPUT', '1', '-i', 'bindery1', '-j', 'DROP']);
    await run(['-I', 'DOCKER-USER', '1', '-i', 'bindery1', '-j', 'BINDERY-bindery1']);
    await prepareSandbox({ engine, config, run, run6, runLink, log: quietLog });
    expect(engine.removed).toEqual(['bindery-builds']);
    expect(run.rules.get('DOCKER-USER')).toEqual([
      '-i bindb+ -j BINDERY-bindb',
      '-i bindery0 -j BINDERY-bindery0',
    ]);
    expect(run6.rules.get('INPUT')).not.toContain('-i bindery1 -j DROP');
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
      '-i bindb+ -j DROP',
      '-i bindery0 -j DROP',
      '-i lo -j ACCEPT',
    ]);
  });
});

describe('a Docker daemon on another machine', () => {
  const sandboxFor = (DOCKER_HOST: string) =>
    prepareSandbox({
      engine: fakeEngine(),
      config: loadConfig({ DOCKER_HOST }),
      ...firewall(),
      log: quietLog,
    });

  it("has no sandbox, since the firewall is this machine's: sessions and builds are refused", async () => {
    const sandbox = await sandboxFor('tcp://builder.internal:2376');
    expect(await sandbox.check()).toEqual({
      ok: false,
      problems: [
        "DOCKER_HOST tcp://builder.internal:2376 is another machine, and the sandbox's firewall is installed with this machine's iptables: its sessions and builds would run without it. Run this process on that host (DOCKER_HOST unset), or set BINDERY_SANDBOX_OPTOUT=1 to run them unsandboxed (for development only).",
      ],
    });
  });

  it('on loopback is this machine, whatever the transport', async () => {
    for (const host of ['tcp://127.0.0.1:2376', 'tcp://localhost:2375', 'tcp://[::1]:2376']) {
      expect(await (await sandboxFor(host)).check()).toEqual({ ok: true, problems: [] });
    }
  });
});
