/**
 * BINDERY_ENGINE=swarm, for real: a one-node Swarm on this daemon (initialised on loopback by
 * this file when the daemon is in none, and left at the end), the whole service launching
 * through /build, each session a Swarm service on the sandbox's swarm-scoped bridge. The proxy,
 * a kernel, culling and reconcile after a restart work as with containers, and the sandbox's
 * egress and isolation probes (as sandbox-egress.test.ts makes them) hold: only the allowed
 * target on 80/443, no other network, no host service, no other session.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { SwarmEngine } from '../../src/engine/swarm-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService, type RunningService } from '../../src/service.js';
import { cullSessions } from '../../src/sessions/cull-sessions.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { captureLog, quietLog } from '../helpers/capture-log.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { holdLoopbackSwarm } from '../helpers/swarm-lock.js';
import { waitFor } from '../helpers/wait-for.js';
import { runInKernel } from '../helpers/jupyter-kernel.js';
import { probe, startNetnsTarget, type NetnsTarget } from '../helpers/netns-target.js';

const exec = promisify(execFile);
const docker = async (...args: string[]) => (await exec('docker', args)).stdout.trim();
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const namespace = `sw${run}`;
const ALLOWED = { name: 'bnd-s48', hostAddress: '10.244.48.1', address: '10.244.48.2' };
const FORBIDDEN = { name: 'bnd-s49', hostAddress: '10.244.49.1', address: '10.244.49.2' };
const PORTS = [80, 443, 22, 8080];

/** Releases this file's hold on the daemon's swarm (test/helpers/swarm-lock.ts). */
let releaseSwarm: (() => Promise<void>) | undefined;
let git: GitServer;
let repoUrl: string;
let allowed: NetnsTarget;
let forbidden: NetnsTarget;
let hostServer: Server;
let hostPort: number;
let config: Config;
let service: RunningService | undefined;
const engine = new SwarmEngine();
const serviceLog = captureLog('warn');
const redis = new Redis();
const store = new SessionStore(redis, namespace);
const routes = new RedisRouteTable(redis, { prefix: namespace });

const serve = async () => {
  service = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: serviceLog.log,
  });
  return service.url!;
};

/** The container of a session's task on this node. */
const containerOf = (session: string) =>
  docker('ps', '-q', '--no-trunc', '--filter', `label=bindery.session=${session}`);
const servicesOfStore = async () =>
  (
    await docker(
      'service',
      'ls',
      '--filter',
      `label=bindery.store=${namespace}`,
      '--format',
      '{{.Name}}',
    )
  )
    .split('\n')
    .filter(Boolean)
    .sort();

async function launch(url: string): Promise<StreamEvent & { url: string; token: string }> {
  const { events } = await readEventStream(`${url}/build/git/${encodeURIComponent(repoUrl)}/HEAD`);
  const ready = events.at(-1)!;
  if (ready.phase !== 'ready') {
    // The service's reason, which the visitor is not told.
    const errors = serviceLog.entries().filter((entry) => entry.level >= 50);
    throw new Error(
      `launch ended with ${JSON.stringify(ready)}; logged: ${JSON.stringify(errors)}`,
    );
  }
  return ready as StreamEvent & { url: string; token: string };
}
const sessionName = (url: string) => /\/user\/([^/]+)\//.exec(url)![1]!;

beforeAll(async () => {
  // The other swarm test file may hold the daemon's swarm: wait for it to leave.
  releaseSwarm = await holdLoopbackSwarm();
  git = await startGitServer();
  repoUrl = (await git.publish('demo', FIXTURE)).url;
  allowed = await startNetnsTarget({ ...ALLOWED, ports: PORTS });
  forbidden = await startNetnsTarget({ ...FORBIDDEN, ports: PORTS });
  hostServer = createServer((socket) => socket.end('host service\n'));
  await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
  hostPort = (hostServer.address() as { port: number }).port;
  const port = await freePort();
  config = loadConfig({
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_ENGINE: 'swarm',
    BINDERY_IMAGE_PREFIX: `bindery-test/${namespace}-`,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_SESSION_NETWORK: `bindery-swarm-${run}`,
    BINDERY_EGRESS_ALLOW_CIDRS: '10.244.48.0/24',
  });
}, 720_000);

afterAll(async () => {
  // Every step is tried, whatever failed before it: a swarm left on would change the daemon for
  // every other test file.
  const failures: unknown[] = [];
  const step = async (action: () => Promise<unknown>) => {
    await action().catch((error: unknown) => failures.push(error));
  };
  await step(async () => service?.close());
  await step(async () => {
    for (const name of await servicesOfStore()) await engine.removeContainer(name);
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
  await step(async () => hostServer && new Promise((resolve) => hostServer.close(resolve)));
  await step(async () => allowed?.close());
  await step(async () => forbidden?.close());
  await step(async () => git?.close());
  await step(async () => releaseSwarm?.());
  if (failures.length > 0) throw failures[0];
}, 120_000);

describe('sessions as Swarm services', () => {
  let url: string;
  const sessions: (StreamEvent & { url: string; token: string })[] = [];

  beforeAll(async () => {
    url = await serve();
    sessions.push(await launch(url), await launch(url));
  }, 300_000);

  test('each launch is a Swarm service with the limits, labels, user, token and environment of a container session', async () => {
    const name = sessionName(sessions[0]!.url);
    const spec = JSON.parse(await docker('service', 'inspect', name, '--format', '{{json .Spec}}'));
    expect(spec.Labels).toMatchObject({
      'bindery.kind': 'session',
      'bindery.session': name,
      'bindery.repo': `git/${repoUrl}`,
      'bindery.store': namespace,
    });
    expect(spec.TaskTemplate.Resources.Limits).toEqual({
      NanoCPUs: config.session.cpus * 1e9,
      MemoryBytes: config.session.memoryBytes,
      Pids: config.session.pidsLimit,
    });
    expect(spec.TaskTemplate.RestartPolicy.Condition).toBe('none');
    // Placed on this node, whose bridge the proxy reaches.
    const node = await docker('info', '--format', '{{.Swarm.NodeID}}');
    expect(spec.TaskTemplate.Placement.Constraints).toEqual([`node.id==${node}`]);
    // What the node made of it: the container as the kernel runs it.
    const container = JSON.parse(await docker('inspect', await containerOf(name)))[0];
    expect(container.Config.User).toBe('1000:1000');
    expect(container.HostConfig).toMatchObject({
      PidsLimit: config.session.pidsLimit,
      NanoCpus: config.session.cpus * 1e9,
      Memory: config.session.memoryBytes,
      CapDrop: ['ALL'],
      Init: true,
    });
    expect(container.Config.Env).toEqual(
      expect.arrayContaining([
        `JUPYTER_TOKEN=${sessions[0]!.token}`,
        `BINDER_REQUEST=${sessions[0]!.binder_request}`,
        `BINDER_REPO_URL=${sessions[0]!.repo_url}`,
      ]),
    );
    // On the sandbox's bridge alone: no overlay, no docker_gwbridge, no ingress.
    expect(Object.keys(container.NetworkSettings.Networks)).toEqual([config.sandbox.network]);
    const uid = await docker('exec', container.Id, 'id', '-u');
    expect(uid).toBe('1000');
    // No capability in the bounding set: a setuid program gains none (the daemon's API 1.41 drops
    // NoNewPrivileges from a service's spec; SECURITY.md).
    const status = await docker('exec', container.Id, 'cat', '/proc/1/status');
    expect(status).toMatch(/^CapBnd:\s+0{16}$/m);
    expect(status).toMatch(/^CapEff:\s+0{16}$/m);
  }, 60_000);

  test('Jupyter answers through the proxy with the token only, and a kernel runs code', async () => {
    const ready = sessions[0]!;
    expect((await fetch(`${ready.url}api/status?token=${ready.token}`)).status).toBe(200);
    expect((await fetch(`${ready.url}api/status`)).status).toBe(403);
    const cell = await runInKernel(ready.url, ready.token, 'print(6 * 7)', { timeoutMs: 60_000 });
    expect(cell).toMatchObject({ status: 'ok', output: '42\n' });
  }, 90_000);

  describe('the sandbox', () => {
    let inSession: string;
    let outside: string;
    let gateway: string;

    beforeAll(async () => {
      inSession = await containerOf(sessionName(sessions[0]!.url));
      ({ gateway } = await engine.networkAddresses(config.sandbox.network));
      const image = JSON.parse(
        await docker(
          'service',
          'inspect',
          sessionName(sessions[0]!.url),
          '--format',
          '{{json .Spec.TaskTemplate.ContainerSpec.Image}}',
        ),
      ) as string;
      // A container on Docker's default bridge, outside the sandbox: the baselines.
      outside = await docker(
        'run',
        '-d',
        '--rm',
        '--label',
        'bindery.kind=build',
        image,
        'sleep',
        '300',
      );
    }, 60_000);

    afterAll(async () => {
      await docker('rm', '-f', outside).catch(() => '');
    });

    test('reaches ports 80 and 443 of an allowed target, and no other port of it', async () => {
      for (const port of [80, 443]) {
        expect(await probe(inSession, ALLOWED.address, port)).toEqual({
          connected: true,
          banner: `bindery-target ${port}\n`,
        });
      }
      for (const port of [22, 8080]) {
        expect(await probe(inSession, ALLOWED.address, port)).toMatchObject({ connected: false });
        expect(await probe(outside, ALLOWED.address, port)).toMatchObject({ connected: true });
      }
    }, 90_000);

    test('reaches no network outside the allow list, even on port 80', async () => {
      expect(await probe(inSession, FORBIDDEN.address, 80)).toMatchObject({ connected: false });
      expect(await probe(outside, FORBIDDEN.address, 80)).toMatchObject({ connected: true });
    }, 60_000);

    test("reaches no service of the host's", async () => {
      expect(await probe(inSession, gateway, hostPort)).toMatchObject({ connected: false });
      // The same address and port from outside the sandbox answer: the refusal is the sandbox's.
      expect(await probe(outside, gateway, hostPort)).toMatchObject({ connected: true });
    }, 60_000);

    test("reaches not another session's Jupyter, which the host (the proxy) reaches", async () => {
      const other = await containerOf(sessionName(sessions[1]!.url));
      const address = JSON.parse(
        await docker('inspect', other, '--format', '{{json .NetworkSettings.Networks}}'),
      )[config.sandbox.network].IPAddress as string;
      expect(await probe(inSession, address, 8888)).toMatchObject({ connected: false });
      const response = await fetch(
        `http://${address}:8888${new URL(sessions[1]!.url).pathname}api/status?token=${sessions[1]!.token}`,
      );
      expect(response.status).toBe(200);
    }, 60_000);

    test('the firewall is checked and healthy', async () => {
      const health = (await (await fetch(`${url}/health`)).json()) as { ok: boolean };
      expect(health.ok).toBe(true);
    }, 30_000);
  });

  test('after a restart, reconcile keeps live sessions and removes the rest', async () => {
    const [kept, gone] = sessions.map((session) => sessionName(session.url));
    await service!.close();
    service = undefined;
    // One session's service ends while Bindery is down; one service nobody holds a record of.
    await docker('service', 'rm', gone!);
    const orphan = `bindery-${run}000000`.slice(0, 20);
    await docker(
      'service',
      'create',
      '-d',
      '--name',
      orphan,
      '--label',
      'bindery.kind=session',
      '--label',
      `bindery.store=${namespace}`,
      '--label',
      `bindery.session=${orphan}`,
      '--network',
      config.sandbox.network,
      '--restart-condition',
      'none',
      JSON.parse(
        await docker(
          'service',
          'inspect',
          kept!,
          '--format',
          '{{json .Spec.TaskTemplate.ContainerSpec.Image}}',
        ),
      ),
      'sleep',
      '300',
    );
    const again = await serve();
    expect(await servicesOfStore()).toEqual([kept]);
    expect((await store.all()).map((record) => record.name)).toEqual([kept]);
    // The kept session answers through the restarted proxy.
    const path = new URL(sessions[0]!.url).pathname;
    expect((await fetch(`${again}${path}api/status?token=${sessions[0]!.token}`)).status).toBe(200);
  }, 180_000);

  test('culling removes the service, the route and the record', async () => {
    const name = sessionName(sessions[0]!.url);
    const culled = await cullSessions({
      engine,
      store,
      routes,
      config: { idleTimeoutSeconds: 0, maxAgeSeconds: 0 },
    });
    expect(culled).toEqual([name]);
    expect(await servicesOfStore()).toEqual([]);
    expect(await store.all()).toEqual([]);
    // Its container is gone already; the proxy forgets the route within its cache's 2 s.
    expect(await containerOf(name)).toBe('');
    const status = () =>
      fetch(`${sessions[0]!.url}api/status?token=${sessions[0]!.token}`).then((r) => r.status);
    await waitFor(async () => (await status()) === 404, 'the proxy to answer 404', 10_000);
  }, 60_000);
});
