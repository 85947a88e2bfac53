/**
 * A second node, for real: a second dockerd on this machine in its own network namespace (its
 * own data root, socket and cgroup parent) joins a swarm of this daemon's as a worker; labelled
 * `bindery.sessions=true` and `bindery.docker-host=<its socket>`, it is where Swarm places the
 * sessions. The session is reached through the proxy over a route to that node's session subnet,
 * and the sandbox's rules, installed in the node's own namespace, hold there: only the allowed
 * target on 80/443, no other network, no host service, no other session. The build pushes the
 * image to a registry on the host's loopback (BINDERY_REGISTRY), and the node pulls it from there
 * as its own 127.0.0.1, relayed over the link: loopback is the one address both daemons speak
 * plain HTTP to without an `insecure-registries` entry, which this shared daemon cannot be given.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { SwarmEngine } from '../../src/engine/swarm-engine.js';
import { runSandbox } from '../../src/cli/run-sandbox.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { bridgeFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService, type RunningService } from '../../src/service.js';
import { cullSessions } from '../../src/sessions/cull-sessions.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { quietLog } from '../helpers/capture-log.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { runInKernel } from '../helpers/jupyter-kernel.js';
import { probe, startNetnsTarget, type NetnsTarget } from '../helpers/netns-target.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';
import { startSecondNode, type SecondNode } from '../helpers/second-docker-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { holdSwarm } from '../helpers/swarm-lock.js';

const exec = promisify(execFile);
const docker = async (...args: string[]) => (await exec('docker', args)).stdout.trim();
const iptables = (...args: string[]) => exec('iptables', ['-w', ...args]);
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const namespace = `sn${run}`;
const NODE = { name: 'bnd-n2', hostAddress: '10.244.50.1', address: '10.244.50.2' };
/** The session subnet of the second node, routed from the host through it. */
const NODE_SUBNET = '10.244.51.0/24';
const ALLOWED = { name: 'bnd-n52', hostAddress: '10.244.52.1', address: '10.244.52.2' };
const FORBIDDEN = { name: 'bnd-n53', hostAddress: '10.244.53.1', address: '10.244.53.2' };
/** The link between the host and the node forwards, as a network between two hosts would. */
const LINK_RULES = [
  ['-i', `${NODE.name}-h`, '-j', 'ACCEPT'],
  ['-o', `${NODE.name}-h`, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
];

let initialisedSwarm = false;
/** Releases this file's hold on the daemon's swarm (test/helpers/swarm-lock.ts). */
let releaseSwarm: (() => Promise<void>) | undefined;
let gwbridgeBefore = true;
let node: SecondNode;
let nodeId: string;
let git: GitServer;
let repoUrl: string;
let allowed: NetnsTarget;
let forbidden: NetnsTarget;
let hostServer: Server;
let registry: LocalRegistry;
/** The host's end of the registry's way to the node: the link address, to the registry on loopback. */
let registryRelay: Server;
let image: string;
let hostPort: number;
let env: Record<string, string>;
let config: Config;
let url: string;
let service: RunningService | undefined;
const engine = new SwarmEngine();
const redis = new Redis();
const store = new SessionStore(redis, namespace);
const routes = new RedisRouteTable(redis, { prefix: namespace });
const sessions: (StreamEvent & { url: string; token: string })[] = [];
const sessionName = (sessionUrl: string) => /\/user\/([^/]+)\//.exec(sessionUrl)![1]!;

/** What a process in the node's own namespace (outside any container) reaches: the baselines. */
async function fromNodeNamespace(host: string, port: number): Promise<boolean> {
  const script = `exec 3<>/dev/tcp/${host}/${port} && head -c 200 <&3`;
  return exec('nsenter', [
    `--net=/var/run/netns/${NODE.name}`,
    'timeout',
    '5',
    'bash',
    '-c',
    script,
  ]).then(
    ({ stdout }) => stdout.length > 0,
    () => false,
  );
}

const launch = async () => {
  const { events } = await readEventStream(`${url}/build/git/${encodeURIComponent(repoUrl)}/HEAD`);
  const ready = events.at(-1)!;
  if (ready.phase !== 'ready') throw new Error(`launch ended with ${JSON.stringify(ready)}`);
  return ready as StreamEvent & { url: string; token: string };
};
const nodeContainerOf = (session: string) =>
  node.docker('ps', '-q', '--no-trunc', '--filter', `label=bindery.session=${session}`);

beforeAll(async () => {
  // The other swarm test file may hold the daemon's swarm: wait for it to leave.
  releaseSwarm = await holdSwarm();
  if ((await docker('info', '--format', '{{.Swarm.LocalNodeState}}')) !== 'inactive') {
    throw new Error(
      'This test makes a swarm of its own, and this Docker daemon is in one already (docker swarm leave --force if it is a leftover).',
    );
  }
  gwbridgeBefore =
    (await docker('network', 'ls', '-q', '--filter', 'name=^docker_gwbridge$')) !== '';
  node = await startSecondNode(NODE);
  for (const rule of LINK_RULES) await iptables('-I', 'FORWARD', '1', ...rule);
  await exec('ip', ['route', 'replace', NODE_SUBNET, 'via', NODE.address]);
  // Advertised on the link only: no address another machine reaches.
  await docker(
    'swarm',
    'init',
    '--advertise-addr',
    NODE.hostAddress,
    '--listen-addr',
    `${NODE.hostAddress}:2377`,
  );
  initialisedSwarm = true;
  const token = await docker('swarm', 'join-token', '-q', 'worker');
  await node.docker('swarm', 'join', '--token', token, `${NODE.hostAddress}:2377`);
  nodeId = await node.docker('info', '--format', '{{.Swarm.NodeID}}');
  await docker(
    'node',
    'update',
    '--label-add',
    'bindery.sessions=true',
    '--label-add',
    `bindery.docker-host=${node.dockerHost}`,
    nodeId,
  );

  git = await startGitServer();
  repoUrl = (await git.publish('demo', FIXTURE)).url;
  allowed = await startNetnsTarget({ ...ALLOWED, ports: [80, 443, 22] });
  forbidden = await startNetnsTarget({ ...FORBIDDEN, ports: [80] });
  hostServer = createServer((socket) => socket.end('host service\n'));
  await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
  hostPort = (hostServer.address() as { port: number }).port;

  // The registry listens on the host's loopback, the one address both daemons speak plain HTTP
  // to; the node reaches it as its own 127.0.0.1, relayed over the link.
  registry = await startLocalRegistry();
  const registryPort = Number(registry.host.split(':')[1]);
  registryRelay = createServer((socket) => {
    const upstream = connect(registryPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) =>
    registryRelay.listen(registryPort, NODE.hostAddress, resolve),
  );
  await node.forwardLoopback(registryPort, `${NODE.hostAddress}:${registryPort}`);

  const port = await freePort();
  env = {
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_ENGINE: 'swarm',
    BINDERY_IMAGE_PREFIX: `bindery-test/${namespace}-`,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_SESSION_NETWORK: `bindery-swarm2-${run}`,
    BINDERY_EGRESS_ALLOW_CIDRS: '10.244.52.0/24',
    BINDERY_API_TOKENS: 'test-token',
    BINDERY_REGISTRY: registry.host,
  };
  config = loadConfig(env);
  // The node's own config-only network, with a subnet of its own the host routes to it. The
  // sandbox's rules in its namespace are Bindery's to install, through the node's daemon.
  const network = config.sandbox.network;
  await node.docker(
    'network',
    'create',
    '--config-only',
    '--subnet',
    NODE_SUBNET,
    '--opt',
    `com.docker.network.bridge.name=${bridgeFor(network)}`,
    '--opt',
    'com.docker.network.bridge.enable_icc=false',
    `${network}-config`,
  );
  service = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: quietLog,
  });
  url = service.url!;

  const built = await readEventStream(
    `${url}/build/git/${encodeURIComponent(repoUrl)}/HEAD?build_only=true`,
    {
      headers: { Authorization: 'Bearer test-token' },
    },
  );
  image = built.events.at(-1)!.imageName as string;
  if (!image) throw new Error(`build ended with ${JSON.stringify(built.events.at(-1))}`);
  sessions.push(await launch(), await launch());
}, 900_000);

afterAll(async () => {
  const failures: unknown[] = [];
  const step = async (action: () => Promise<unknown>) => {
    await action().catch((error: unknown) => failures.push(error));
  };
  await step(async () => service?.close());
  await step(async () => {
    const names = await docker(
      'service',
      'ls',
      '--filter',
      `label=bindery.store=${namespace}`,
      '--format',
      '{{.Name}}',
    );
    for (const name of names.split('\n').filter(Boolean)) await engine.removeContainer(name);
  });
  await step(async () => {
    const keys = [
      ...(await redis.keys(`${namespace}:*`)),
      ...(await redis.keys(`bull:*${namespace}*`)),
      ...(await redis.keys(`build:${config.imagePrefix}*`)),
    ];
    if (keys.length > 0) await redis.del(...keys);
  });
  redis.disconnect();
  await step(async () => {
    const images = await docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}');
    for (const image of images.split('\n').filter((name) => name.startsWith(config.imagePrefix))) {
      await engine.removeImage(image);
    }
  });
  await step(async () => (await prepareSandbox({ engine, config, log: quietLog })).remove());
  await step(async () => node?.docker('swarm', 'leave', '--force'));
  if (initialisedSwarm) {
    await step(() => docker('swarm', 'leave', '--force'));
    if (!gwbridgeBefore) await step(() => docker('network', 'rm', 'docker_gwbridge'));
  }
  await step(() => exec('ip', ['route', 'del', NODE_SUBNET]));
  await step(async () => node?.close());
  for (const rule of LINK_RULES) await step(() => iptables('-D', 'FORWARD', ...rule));
  await step(async () => hostServer && new Promise((resolve) => hostServer.close(resolve)));
  await step(async () => registryRelay && new Promise((resolve) => registryRelay.close(resolve)));
  await step(async () => registry?.close());
  await step(async () => allowed?.close());
  await step(async () => forbidden?.close());
  await step(async () => git?.close());
  await step(async () => releaseSwarm?.());
  if (failures.length > 0) throw failures[0];
}, 180_000);

describe('a session on a second node of the swarm', () => {
  test('Swarm places it on the labelled node, and it answers through the proxy; a kernel runs code', async () => {
    for (const session of sessions) {
      const name = sessionName(session.url);
      const nodes = await docker(
        'service',
        'ps',
        name,
        '--format',
        '{{.Node}} {{.CurrentState}}',
        '--filter',
        'desired-state=running',
      );
      expect(nodes).toMatch(/Running/);
      const task = JSON.parse(
        await docker('inspect', (await docker('service', 'ps', '-q', name)).split('\n')[0]!),
      );
      expect(task[0].NodeID).toBe(nodeId);
      // Its container is the second daemon's, not this one's.
      expect(await nodeContainerOf(name)).not.toBe('');
      expect(await docker('ps', '-q', '--filter', `label=bindery.session=${name}`)).toBe('');
    }
    // The node pulled the image from the registry (it has the registry's digest), after the
    // build pushed it there.
    const [repository, tag] = [
      image.slice(0, image.lastIndexOf(':')),
      image.slice(image.lastIndexOf(':') + 1),
    ];
    expect(await registry.tags(repository.slice(registry.host.length + 1))).toContain(tag);
    const digests = await node.docker(
      'image',
      'inspect',
      image,
      '--format',
      '{{json .RepoDigests}}',
    );
    expect(JSON.parse(digests)).toEqual([expect.stringMatching(/@sha256:[0-9a-f]{64}$/)]);
    const ready = sessions[0]!;
    expect((await fetch(`${ready.url}api/status?token=${ready.token}`)).status).toBe(200);
    expect((await fetch(`${ready.url}api/status`)).status).toBe(403);
    const cell = await runInKernel(ready.url, ready.token, 'print(6 * 7)', { timeoutMs: 60_000 });
    expect(cell).toMatchObject({ status: 'ok', output: '42\n' });
  }, 120_000);

  test('its sandbox holds on that node: the allowed target on 80/443 only, no other network, no host service, no other session', async () => {
    const inSession = await nodeContainerOf(sessionName(sessions[0]!.url));
    const on = (host: string, port: number) =>
      probe(inSession, host, port, undefined, node.dockerHost);
    expect(await on(ALLOWED.address, 80)).toEqual({
      connected: true,
      banner: 'bindery-target 80\n',
    });
    expect(await on(ALLOWED.address, 443)).toMatchObject({ connected: true });
    expect(await on(ALLOWED.address, 22)).toMatchObject({ connected: false });
    expect(await fromNodeNamespace(ALLOWED.address, 22)).toBe(true);
    expect(await on(FORBIDDEN.address, 80)).toMatchObject({ connected: false });
    expect(await fromNodeNamespace(FORBIDDEN.address, 80)).toBe(true);
    expect(await on(NODE.hostAddress, hostPort)).toMatchObject({ connected: false });
    expect(await fromNodeNamespace(NODE.hostAddress, hostPort)).toBe(true);
    const other = await nodeContainerOf(sessionName(sessions[1]!.url));
    const address = JSON.parse(
      await node.docker('inspect', other, '--format', '{{json .NetworkSettings.Networks}}'),
    )[config.sandbox.network].IPAddress as string;
    expect(await on(address, 8888)).toMatchObject({ connected: false });
  }, 120_000);

  test('a node whose rules go missing takes no session and /health names it, until bindery sandbox puts them back', async () => {
    const bridge = bridgeFor(config.sandbox.network);
    const hooks = async () =>
      (await node.iptables(['-S', 'DOCKER-USER']))
        .split('\n')
        .filter((line) => line.startsWith(`-A DOCKER-USER -i ${bridge} `));
    const [hook] = await hooks();
    expect(hook).toBeDefined();
    await node.iptables(['-D', ...hook!.split(' ').slice(1)]);

    // Each node's rules, once read, stand for 10 s (src/sandbox/node-firewalls.ts).
    const health = async () => {
      const response = await fetch(`${url}/health`);
      return {
        status: response.status,
        checks: ((await response.json()) as { checks: { service: string }[] }).checks,
      };
    };
    await waitFor(async () => (await health()).status === 503, '/health to say 503', 30_000);
    expect((await health()).checks).toContainEqual({
      service: 'Sandbox',
      ok: false,
      message: expect.stringContaining(`(${nodeId}): DOCKER-USER lacks: -i ${bridge} -j`),
    });
    const services = () =>
      docker('service', 'ls', '-q', '--filter', `label=bindery.store=${namespace}`);
    const before = await services();
    const { events } = await readEventStream(
      `${url}/build/git/${encodeURIComponent(repoUrl)}/HEAD`,
    );
    expect(events.at(-1)).toMatchObject({
      phase: 'failed',
      status_code: 503,
      message: expect.stringMatching(
        /^Sessions are refused: the sandbox's firewall is not in place \(node .* DOCKER-USER lacks/,
      ),
    });
    expect(await services()).toBe(before);

    // What the operator runs on the manager: it installs the node's rules through its daemon.
    expect(await runSandbox(false, env)).toBe(0);
    expect(await hooks()).toEqual([hook]);
    await waitFor(async () => (await health()).status === 200, '/health to say 200', 30_000);
    const again = await launch();
    sessions.push(again);
    expect(await nodeContainerOf(sessionName(again.url))).not.toBe('');
  }, 180_000);

  test('culling removes its service and its container on the node', async () => {
    const culled = await cullSessions({
      engine,
      store,
      routes,
      config: { idleTimeoutSeconds: 0, maxAgeSeconds: 0 },
    });
    expect(culled.sort()).toEqual(sessions.map((session) => sessionName(session.url)).sort());
    for (const session of sessions)
      expect(await nodeContainerOf(sessionName(session.url))).toBe('');
  }, 60_000);
});
