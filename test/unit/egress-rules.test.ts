import { describe, expect, it } from '@jest/globals';
import { NON_PUBLIC_IPV4 } from '../../src/repos/address-ranges.js';
import { egressChain, egressChainRules, hookRules } from '../../src/sandbox/egress-rules.js';
import { bridgeFor } from '../../src/sandbox/prepare-sandbox.js';

const policy = {
  bridge: 'bindery0',
  ports: [80, 443],
  allowCidrs: ['10.250.0.0/24'],
  hostAddresses: ['203.0.113.9', '10.0.0.4'],
  resolvers: ['10.255.255.53'],
};
const rules = egressChainRules(policy).map((args) => args.join(' '));
const at = (pattern: RegExp) => rules.findIndex((rule) => pattern.test(rule));

describe('the egress chain', () => {
  it('lets replies through first and refuses whatever no rule allowed last', () => {
    expect(rules[0]).toBe('-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN');
    expect(rules.at(-1)).toBe('-j REJECT --reject-with icmp-port-unreachable');
  });

  it('allows the listed ports to the allowed CIDRs before refusing private ranges', () => {
    const allowed = at(/^-d 10\.250\.0\.0\/24 -p tcp -m multiport --dports 80,443 -j RETURN$/);
    expect(allowed).toBeGreaterThan(0);
    expect(allowed).toBeLessThan(at(/^-d 10\.0\.0\.0\/8 -j REJECT/));
  });

  it("refuses every non-public range and the host's own addresses before allowing public ports", () => {
    const publicPorts = at(/^-p tcp -m multiport --dports 80,443 -j RETURN$/);
    for (const cidr of [...NON_PUBLIC_IPV4, '203.0.113.9/32', '10.0.0.4/32']) {
      const refusal = rules.indexOf(`-d ${cidr} -j REJECT --reject-with icmp-port-unreachable`);
      expect(refusal).toBeGreaterThan(0);
      expect(refusal).toBeLessThan(publicPorts);
    }
    expect(rules).toContain('-d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable');
  });

  it("lets DNS reach the host's resolvers, which Docker's embedded DNS forwards to", () => {
    expect(at(/^-d 10\.255\.255\.53\/32 -p udp --dport 53 -j RETURN$/)).toBeLessThan(
      at(/^-d 10\.0\.0\.0\/8 -j REJECT/),
    );
  });

  it('is named for the bridge and hooked into DOCKER-USER and INPUT for that bridge only', () => {
    expect(egressChain(policy)).toBe('BINDERY-bindery0');
    expect(hookRules(policy)).toEqual([
      { chain: 'DOCKER-USER', args: ['-i', 'bindery0', '-j', 'BINDERY-bindery0'] },
      {
        chain: 'INPUT',
        args: [
          '-i',
          'bindery0',
          '-m',
          'conntrack',
          '--ctstate',
          'ESTABLISHED,RELATED',
          '-j',
          'ACCEPT',
        ],
      },
      {
        chain: 'INPUT',
        args: ['-i', 'bindery0', '-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'],
      },
    ]);
    expect(bridgeFor('bindery-sessions')).toBe('bindery0');
    expect(bridgeFor('bindery-test-1')).toMatch(/^bnd[0-9a-f]{8}$/);
    expect(bridgeFor('bindery-test-1').length).toBeLessThanOrEqual(15);
  });
});
