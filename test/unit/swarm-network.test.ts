import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import {
  configNetworkFor,
  sessionNetworkProblem,
  subnetOf,
  type NetworkInfo,
} from '../../src/engine/swarm-network.js';

const spec = { name: 'bindery-swarm', bridge: 'bnd12345678', interContainer: false };
const swarmNetwork: NetworkInfo = {
  Name: 'bindery-swarm',
  Scope: 'swarm',
  ConfigFrom: { Network: 'bindery-swarm-config' },
};
const configNetwork: NetworkInfo = {
  Name: 'bindery-swarm-config',
  Scope: 'local',
  ConfigOnly: true,
  Options: {
    'com.docker.network.bridge.name': 'bnd12345678',
    'com.docker.network.bridge.enable_icc': 'false',
  },
  IPAM: { Config: [{ Subnet: '172.30.0.0/16', Gateway: '172.30.0.1' }] },
};

describe('the sessions network of BINDERY_ENGINE=swarm', () => {
  it('is made from a config-only network named after it', () => {
    expect(configNetworkFor('bindery-swarm')).toBe('bindery-swarm-config');
  });

  it('is accepted when swarm-scoped, made from its config-only network, with the bridge and inter-container setting asked', () => {
    expect(sessionNetworkProblem(spec, swarmNetwork, configNetwork)).toBeUndefined();
    expect(subnetOf(configNetwork)).toEqual({ subnet: '172.30.0.0/16', gateway: '172.30.0.1' });
  });

  it('refuses the local bridge of BINDERY_ENGINE=docker under the same name, saying what to do', () => {
    const local: NetworkInfo = { Name: 'bindery-swarm', Scope: 'local', Options: {} };
    expect(sessionNetworkProblem(spec, local, undefined)).toMatch(
      /exists as a local-scoped network; Swarm sessions need a swarm-scoped bridge made from the config-only network bindery-swarm-config\. Remove it \(docker network rm bindery-swarm bindery-swarm-config\)/,
    );
  });

  it('refuses a config-only network whose bridge would let sessions talk to each other', () => {
    const open = {
      ...configNetwork,
      Options: { ...configNetwork.Options, 'com.docker.network.bridge.enable_icc': 'true' },
    };
    expect(sessionNetworkProblem(spec, swarmNetwork, open)).toMatch(
      /inter-container traffic true; Bindery needs bridge bnd12345678 and false/,
    );
    const renamed = {
      ...configNetwork,
      Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    };
    expect(sessionNetworkProblem(spec, swarmNetwork, renamed)).toMatch(/has bridge \(default\)/);
  });

  it('refuses a missing config-only network, and one without a subnet for the link rules', () => {
    expect(sessionNetworkProblem(spec, swarmNetwork, undefined)).toMatch(
      /config-only network bindery-swarm-config .* is missing on this node/,
    );
    expect(sessionNetworkProblem(spec, swarmNetwork, { ...configNetwork, IPAM: null })).toMatch(
      /has no IPv4 subnet/,
    );
  });
});

describe('BINDERY_ENGINE', () => {
  it('is docker unless swarm is asked for', () => {
    expect(loadConfig({}).engine).toBe('docker');
    expect(loadConfig({ BINDERY_ENGINE: 'swarm' }).engine).toBe('swarm');
    expect(() => loadConfig({ BINDERY_ENGINE: 'kubernetes' })).toThrow(/BINDERY_ENGINE/);
  });

  it('refuses runsc with Swarm, saying where the runtime is set instead', () => {
    expect(() => loadConfig({ BINDERY_ENGINE: 'swarm', BINDERY_RUNTIME: 'runsc' })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ BINDERY_ENGINE: 'swarm', BINDERY_RUNTIME: 'runsc' })).toThrow(
      /default-runtime/,
    );
  });
});
