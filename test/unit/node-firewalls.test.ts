import { describe, expect, it } from '@jest/globals';
import type { ContainerEngine, SessionHost } from '../../src/engine/container-engine.js';
import { egressChain, egressChainRules } from '../../src/sandbox/egress-rules.js';
import { nodeFirewalls, resolversIn } from '../../src/sandbox/node-firewalls.js';

/** A node whose every firewall command fails as on a host without the tools; counts its commands. */
function brokenNode(id: string, subnet: string) {
  const host = {
    id,
    name: `host-${id}`,
    subnet,
    commands: 0,
    run: async (command: string[]) => {
      host.commands++;
      if (command[0] === 'cat') return 'nameserver 10.0.0.2\nnameserver ::1\n';
      if (command[0] === 'ip')
        return '2: eth0    inet 8.8.4.4/24 brd 8.8.4.255 scope global eth0\n';
      throw new Error(`${command[0]}: command not found\nsecond line`);
    },
  };
  return host;
}

function firewalls(hosts: SessionHost[], now = () => 0) {
  const engine = { sessionHosts: async () => hosts } as unknown as ContainerEngine;
  return nodeFirewalls({
    engine,
    network: 'sessions',
    bridge: 'bindery0',
    policy: { ports: [80, 443], allowCidrs: [] },
    now,
  });
}

describe('nodeFirewalls', () => {
  it('sets aside each node whose rules cannot be read, naming the node and the first line of the reason', async () => {
    const a = brokenNode('a1', '10.1.0.0/24');
    const b = brokenNode('b2', '');
    const check = await firewalls([a, b]).check();
    expect(check.avoid).toEqual(['a1', 'b2']);
    expect(check.placeable).toBe(false);
    expect(check.problems).toContain(
      "node host-b2 (b2): it has no config-only network sessions-config with a subnet of its own for the sessions' bridge; make one there (README, Sessions on Docker Swarm), then run bindery sandbox",
    );
    expect(
      check.problems.filter((problem) => problem.startsWith('node host-a1 (a1): ')),
    ).not.toEqual([]);
    expect(check.problems.join('\n')).not.toMatch(/second line/);
  });

  it('is placeable while one node is fine, and with no session nodes at all', async () => {
    expect(await firewalls([]).check()).toEqual({ problems: [], avoid: [], placeable: true });
    // A node whose tools list the chain as the policy has it and find every other rule.
    const policy = {
      ports: [80, 443],
      allowCidrs: [],
      bridge: 'bindery0',
      subnet: '10.2.0.0/24',
      resolvers: [],
      hostAddresses: [],
    };
    const chain = egressChainRules(policy).map(
      (args) => `-A ${egressChain(policy)} ${args.join(' ')}`,
    );
    const fine: SessionHost = {
      id: 'ok',
      name: 'fine',
      subnet: policy.subnet,
      run: async (command) => (command.includes('-S') ? chain.join('\n') : ''),
    };
    const check = await firewalls([brokenNode('a1', '10.1.0.0/24'), fine]).check();
    expect(check.avoid).toEqual(['a1']);
    expect(check.placeable).toBe(true);
  });

  it('reads a node once per 10 s, for any number of checks', async () => {
    let now = 0;
    const a = brokenNode('a1', '10.1.0.0/24');
    const nodes = firewalls([a], () => now);
    await Promise.all([nodes.check(), nodes.check(), nodes.check()]);
    const once = a.commands;
    expect(once).toBeGreaterThan(0);
    now = 9_999;
    await nodes.check();
    expect(a.commands).toBe(once);
    now = 10_000;
    await nodes.check();
    expect(a.commands).toBe(2 * once);
  });

  it('places no session while the nodes cannot be listed, and asks again at the next check', async () => {
    let listings = 0;
    const engine = {
      sessionHosts: async () => {
        listings++;
        throw new Error('connect ECONNREFUSED /var/run/docker.sock');
      },
    } as unknown as ContainerEngine;
    const nodes = nodeFirewalls({
      engine,
      network: 'sessions',
      bridge: 'bindery0',
      policy: { ports: [80, 443], allowCidrs: [] },
      now: () => 0,
    });
    expect(await nodes.check()).toEqual({
      problems: [
        'the session nodes could not be listed: connect ECONNREFUSED /var/run/docker.sock',
      ],
      avoid: [],
      placeable: false,
    });
    await nodes.check();
    expect(listings).toBe(2);
  });

  it('reads the IPv4 nameservers of a resolv.conf', () => {
    expect(
      resolversIn('# x\nnameserver 1.1.1.1\nnameserver fe80::1\nnameserver  9.9.9.9\n'),
    ).toEqual(['1.1.1.1', '9.9.9.9']);
  });
});
