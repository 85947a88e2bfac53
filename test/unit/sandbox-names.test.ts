/**
 * The names a sandbox network gives the host: Linux bridges hold at most 15 characters and
 * iptables chains at most 28, and test files (or two services on one host) that pick different
 * network names must never end up on the same bridge or chain.
 */
import { describe, expect, it } from '@jest/globals';
import { buildBridgePrefix } from '../../src/sandbox/build-networks.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import { bridgeFor, buildNetworkFor } from '../../src/sandbox/prepare-sandbox.js';

/** Session network names of every shape the configuration accepts, as test files pick them. */
const NETWORKS = [
  'bindery-sessions',
  'bindery-test-f1a2b3c4d',
  'bindery-test-budget0123abcd',
  `bindery-test-${'x'.repeat(200)}`,
  'a',
  'My_Net.work-1',
  ...Array.from({ length: 200 }, (_, i) => `bindery-test-t${i.toString(16).padStart(8, '0')}`),
];

/** A build network's bridge: the prefix's and 8 hex digits of the build's id. */
const buildBridge = (network: string) => `${buildBridgePrefix(buildNetworkFor(network))}ffffffff`;

describe('sandbox names on the host', () => {
  it('fit Linux (bridges ≤ 15 characters) and iptables (chains ≤ 28)', () => {
    for (const network of NETWORKS) {
      for (const bridge of [bridgeFor(network), buildBridge(network)]) {
        expect(bridge).toMatch(/^[a-z0-9]{1,15}$/);
      }
      for (const bridge of [
        bridgeFor(network),
        `${buildBridgePrefix(buildNetworkFor(network))}+`,
      ]) {
        expect(egressChain({ bridge }).length).toBeLessThanOrEqual(28);
      }
    }
  });

  it('differ for different networks: no shared bridge, build-bridge wildcard or chain', () => {
    const sessionBridges = NETWORKS.map(bridgeFor);
    const buildPrefixes = NETWORKS.map((network) => buildBridgePrefix(buildNetworkFor(network)));
    expect(new Set(sessionBridges).size).toBe(NETWORKS.length);
    expect(new Set(buildPrefixes).size).toBe(NETWORKS.length);
    const chains = [
      ...sessionBridges.map((bridge) => egressChain({ bridge })),
      ...buildPrefixes.map((prefix) => egressChain({ bridge: `${prefix}+` })),
    ];
    expect(new Set(chains).size).toBe(chains.length);
    // `-i <prefix>+` matches every interface starting with the prefix: none of another
    // network's bridges may.
    for (const [i, prefix] of buildPrefixes.entries()) {
      const others = [...sessionBridges, ...NETWORKS.filter((_, j) => j !== i).map(buildBridge)];
      expect(others.filter((bridge) => bridge.startsWith(prefix))).toEqual([]);
    }
  });
});
