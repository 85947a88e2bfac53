/**
 * The sandbox's network rules, proven with real containers and only this test's own traffic:
 * a "public" target in a network namespace of the test (listed in BINDERY_EGRESS_ALLOW_CIDRS),
 * a second namespace that is not listed, a server on the host, and two sessions, under runc
 * and under gVisor (runsc). Baselines from a container on Docker's default bridge show each
 * refusal comes from Bindery's rules, not from the target being unreachable anyway.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import { removeFirewall } from '../../src/sandbox/firewall.js';
import { prepareSandbox, type PreparedSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import {
  startSession,
  waitForJupyter,
  type StartedSession,
} from '../../src/sessions/start-session.js';
import { probe, startNetnsTarget, type NetnsTarget } from '../helpers/netns-target.js';
import { quietLog } from '../helpers/capture-log.js';

const exec = promisify(execFile);
const run = randomBytes(3).toString('hex');
const ALLOWED = { name: 'bnd-e252', hostAddress: '10.252.0.1', address: '10.252.0.2' };
const FORBIDDEN = { name: 'bnd-e253', hostAddress: '10.253.0.1', address: '10.253.0.2' };
const PORTS = [80, 443, 22, 25, 5432, 6379, 8080];
const env = {
  BINDERY_IMAGE_PREFIX: `bindery-test/e${run}-`,
  BINDERY_SESSION_NETWORK: `bindery-egress-${run}`,
  BINDERY_EGRESS_ALLOW_CIDRS: '10.252.0.0/24',
};
const config = loadConfig(env);
const engine = new DockerEngine();

let allowed: NetnsTarget;
let forbidden: NetnsTarget;
let sandbox: PreparedSandbox;
let imageName: string;
let hostServer: Server;
/**
 * Redis's port on the session bridge's gateway, as a Redis listening on every address would
 * answer there. This machine's Redis listens on 127.0.0.1 only, so without it a probe of
 * gateway:6379 is refused whatever the sandbox does; undefined when something already listens
 * there (a Redis on every address), which is then what the probes reach.
 */
let redisStandIn: Server | undefined;
let hostPort: number;
let gateway: string;
/** A container on Docker's default bridge, outside the sandbox, for baselines. */
let outside: string;
/** The networks builds were given, as `bindery serve` gives them: one of its own per build. */
const buildNetworks: string[] = [];
const ownNetwork = async () => {
  const network = await sandbox.build.acquire();
  buildNetworks.push(network.network);
  return network;
};

beforeAll(async () => {
  allowed = await startNetnsTarget({ ...ALLOWED, ports: PORTS });
  forbidden = await startNetnsTarget({ ...FORBIDDEN, ports: PORTS });
  sandbox = await prepareSandbox({ engine, config, log: quietLog });
  ({ gateway } = await engine.ensureNetwork({
    name: sandbox.network,
    bridge: sandbox.policy.bridge,
    interContainer: false,
    labels: {},
  }));
  // A service of the host's on every address, as Bindery's API or Redis could be.
  hostServer = createServer((socket) => socket.end('host service\n'));
  await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
  hostPort = (hostServer.address() as { port: number }).port;
  redisStandIn = createServer((socket) => socket.end('-NOAUTH Authentication required.\r\n'));
  await new Promise<void>((resolve, reject) => {
    redisStandIn!.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') return reject(error);
      redisStandIn = undefined;
      resolve();
    });
    redisStandIn!.listen(6379, gateway, resolve);
  });

  const spec = parseSource(join(import.meta.dirname, '../fixtures/repos/default'));
  ({ imageName } = await new Builder({ engine, config, buildNetwork: ownNetwork }).build(spec));
  outside = (
    await exec('docker', [
      'run',
      '-d',
      '--rm',
      '--label',
      'bindery.kind=build',
      imageName,
      'sleep',
      '600',
    ])
  ).stdout.trim();
}, 300_000);

afterAll(async () => {
  await exec('docker', ['rm', '-f', outside]).catch(() => {});
  await sandbox?.remove();
  await new Promise((resolve) => hostServer?.close(resolve));
  if (redisStandIn) await new Promise((resolve) => redisStandIn!.close(resolve));
  await allowed?.close();
  await forbidden?.close();
  if (imageName) await engine.removeImage(imageName);
}, 60_000);

describe.each(['runc', 'runsc'] as const)('sessions under %s', (runtime) => {
  const sessions: StartedSession[] = [];
  const inSession = () => sessions[0]!.container.id;

  beforeAll(async () => {
    const runtimeConfig = loadConfig({ ...env, BINDERY_RUNTIME: runtime });
    for (let i = 0; i < 2; i++) {
      sessions.push(
        await startSession({
          engine,
          config: runtimeConfig,
          imageName,
          repoLabel: 'test/egress',
          network: sandbox.network,
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    for (const session of sessions) await engine.removeContainer(session.container.id);
  }, 60_000);

  test('reach ports 80 and 443 of an allowed target', async () => {
    for (const port of [80, 443]) {
      expect(await probe(inSession(), ALLOWED.address, port)).toEqual({
        connected: true,
        banner: `bindery-target ${port}\n`,
      });
    }
  }, 60_000);

  test('reach no other port of the same target', async () => {
    for (const port of [22, 25, 5432, 6379, 8080]) {
      expect(await probe(inSession(), ALLOWED.address, port)).toMatchObject({ connected: false });
      // From outside the sandbox the port is open: the refusal is the sandbox's.
      expect(await probe(outside, ALLOWED.address, port)).toMatchObject({ connected: true });
    }
  }, 120_000);

  test('reach no network that is not in the allow list, even on port 80', async () => {
    expect(await probe(inSession(), FORBIDDEN.address, 80)).toMatchObject({ connected: false });
    expect(await probe(outside, FORBIDDEN.address, 80)).toMatchObject({ connected: true });
  }, 60_000);

  test("reach neither the host's services nor Redis", async () => {
    expect(await probe(inSession(), gateway, hostPort)).toMatchObject({ connected: false });
    expect(await probe(inSession(), gateway, 6379)).toMatchObject({ connected: false });
    // The same addresses and ports from a container outside the sandbox: both answer, so each
    // refusal above is the sandbox's.
    expect(await probe(outside, gateway, hostPort)).toMatchObject({ connected: true });
    expect(await probe(outside, gateway, 6379)).toMatchObject({ connected: true });
  }, 60_000);

  test("reach not another session's Jupyter, which the host (the proxy) still reaches", async () => {
    const other = sessions[1]!;
    expect(await probe(inSession(), other.container.address, 8888)).toMatchObject({
      connected: false,
    });
    // Jupyter may still be starting (startSession does not wait): wait before asking.
    await waitForJupyter(other.url, other.token, 45_000);
    const response = await fetch(`${other.url}api/status?token=${other.token}`);
    expect(response.status).toBe(200);
  }, 60_000);
});

describe('builds', () => {
  test('a postBuild reaches the allowed target on port 80 and nothing forbidden', async () => {
    // On a build network of its own, not the sessions'.
    const before = buildNetworks.length;
    const dir = await mkdtemp(join(tmpdir(), 'bindery-egress-'));
    try {
      await writeFile(
        join(dir, 'postBuild'),
        [
          '#!/bin/sh',
          'python3 - > "$HOME/egress.txt" <<\'PY\'',
          'import socket',
          'for host, port in [("10.252.0.2", 80), ("10.252.0.2", 22), ("10.253.0.2", 80)]:',
          '    try:',
          '        socket.create_connection((host, port), timeout=3).close()',
          '        print(host, port, "open")',
          '    except OSError:',
          '        print(host, port, "closed")',
          'PY',
          '',
        ].join('\n'),
      );
      const result = await new Builder({ engine, config, buildNetwork: ownNetwork }).build(
        parseSource(dir),
      );
      expect(buildNetworks.slice(before)).toEqual([
        expect.stringMatching(new RegExp(`^${sandbox.build.prefix}-[0-9a-f]{8}$`)),
      ]);
      expect(sandbox.build.inFlight()).toEqual([]);
      try {
        const { output } = await engine.runToCompletion({
          image: result.imageName,
          cmd: ['cat', '/home/jovyan/egress.txt'],
          limits: { cpus: 1, memoryBytes: 2 ** 28 },
          networkDisabled: true,
          timeoutMs: 30_000,
        });
        expect(output.trim().split('\n')).toEqual([
          '10.252.0.2 80 open',
          '10.252.0.2 22 closed',
          '10.253.0.2 80 closed',
        ]);
      } finally {
        await engine.removeImage(result.imageName);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('the rules themselves', () => {
  test('are verified at start, reported healthy, and removed with Bindery', async () => {
    expect(await sandbox.check()).toEqual({ ok: true, problems: [] });
    await removeFirewall(sandbox.policy);
    const chains = (await exec('iptables', ['-S'])).stdout;
    expect(chains).not.toContain(egressChain(sandbox.policy));
    for (const chain of ['DOCKER-USER', 'INPUT']) {
      expect((await exec('iptables', ['-S', chain])).stdout).not.toContain(sandbox.policy.bridge);
    }
    for (const chain of ['INPUT', 'FORWARD']) {
      expect((await exec('ip6tables', ['-S', chain])).stdout).not.toContain(sandbox.policy.bridge);
    }
    expect((await sandbox.check()).ok).toBe(false);
    await engine.removeNetwork(sandbox.network);
  }, 60_000);
});
