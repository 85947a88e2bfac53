import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { startService, type RunningService } from '../../src/service.js';
import { cullSessions } from '../../src/sessions/cull-sessions.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { removeTestSandbox, testSessionNetwork } from '../helpers/test-service.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * Hostile visitors against the whole service (web and worker roles, real Redis, real Docker):
 * many launches at once against the session quotas, addresses of one IPv6 /64 against the
 * per-client limits, and banned repositories written in other cases and escapes.
 */
const exec = promisify(execFile);
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const prefix = `bindery-test/v${run}-`;
/** The sandbox network of this file's services: its bridge and firewall chain are this file's. */
const network = testSessionNetwork(`vl${run}`);
const engine = new DockerEngine();
const redis = new Redis({ maxRetriesPerRequest: 1 });

let git: GitServer;
let repo: { url: string; sha: string };
const services: RunningService[] = [];
const namespaces: string[] = [];

/** A whole service on its own port and Redis keys; its sessions carry its namespace. */
async function serve(env: Record<string, string> = {}) {
  const namespace = `bindery-test-v${run}-${namespaces.length}`;
  namespaces.push(namespace);
  const port = await freePort();
  const config = loadConfig({
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_IMAGE_PREFIX: prefix,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_API_TOKENS: 'test-token',
    BINDERY_SESSION_NETWORK: network,
    ...env,
  });
  const service = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: quietLog,
  });
  services.push(service);
  return { url: service.url!, config, namespace, store: new SessionStore(redis, namespace) };
}

async function removeSessionsOf(wanted: readonly string[]) {
  for (const container of await engine.listSessions()) {
    if (wanted.includes(container.labels['bindery.store'] ?? '')) {
      await engine.removeContainer(container.id);
    }
  }
}

const sessionsOf = async (namespace: string) =>
  (await engine.listSessions()).filter((c) => c.labels['bindery.store'] === namespace);

/** Sends `count` launches of the fixture at once; resolves with each stream's last event. */
async function launchAtOnce(url: string, count: number, headers?: (i: number) => object) {
  const launch = `${url}/build/git/${encodeURIComponent(repo.url)}/${repo.sha}`;
  const streams = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      readEventStream(launch, { headers: headers?.(i) as Record<string, string> }),
    ),
  );
  return streams.map(({ events }) => events.at(-1)!);
}

/** Names of this namespace's session containers that Docker started since `since` (ms). */
async function startedSince(namespace: string, since: number): Promise<string[]> {
  const { stdout } = await exec('docker', [
    'events',
    '--since',
    String(since / 1000),
    '--until',
    String(Date.now() / 1000),
    '--filter',
    'event=start',
    '--filter',
    `label=bindery.store=${namespace}`,
    '--format',
    '{{.Actor.Attributes.name}}',
  ]);
  return stdout.split('\n').filter(Boolean);
}

const ready = (finals: StreamEvent[]) => finals.filter((event) => event.phase === 'ready');
const refused = (finals: StreamEvent[]) => finals.filter((event) => event.phase !== 'ready');

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.publish('demo', FIXTURE);
  // Build the fixture once, so every launch below only starts a session.
  const builder = await serve();
  const { events } = await readEventStream(
    `${builder.url}/build/git/${encodeURIComponent(repo.url)}/${repo.sha}?build_only=true`,
    { headers: { authorization: 'Bearer test-token' } },
  );
  expect(events.at(-1)).toEqual(expect.objectContaining({ phase: 'ready' }));
}, 600_000);

afterEach(async () => {
  await removeSessionsOf(namespaces);
}, 120_000);

afterAll(async () => {
  for (const service of services) await service.close();
  await removeSessionsOf(namespaces);
  for (const namespace of namespaces) {
    const keys = [
      ...(await redis.keys(`${namespace}:*`)),
      ...(await redis.keys(`bull:*${namespace}*`)),
    ];
    if (keys.length > 0) await redis.del(...keys);
  }
  const logs = await redis.keys(`build:${prefix}*`);
  if (logs.length > 0) await redis.del(...logs);
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(image);
  }
  await removeTestSandbox(loadConfig({ BINDERY_SESSION_NETWORK: network }));
  redis.disconnect();
  await git?.close();
}, 120_000);

describe('session quotas hold when launches arrive at once', () => {
  test('20 launches at once from one client with BINDERY_MAX_SESSIONS_PER_CLIENT=3 start exactly 3 sessions', async () => {
    const web = await serve({
      BINDERY_MAX_SESSIONS_PER_CLIENT: '3',
      BINDERY_LAUNCH_RATE_LIMIT: '0',
    });
    const since = Date.now();
    const finals = await launchAtOnce(web.url, 20);
    expect(ready(finals)).toHaveLength(3);
    for (const event of refused(finals)) {
      expect(event).toEqual({
        phase: 'failed',
        status_code: 429,
        message:
          'You already have 3 sessions running here, the most one address may have at once. ' +
          'Close one (File > Shut Down) or wait for one to end, then try again.\n',
      });
    }
    // Not one container more was started, not even for a moment.
    expect(await startedSince(web.namespace, since)).toHaveLength(3);
    expect(await sessionsOf(web.namespace)).toHaveLength(3);
    expect(await web.store.all()).toHaveLength(3);
  }, 300_000);

  test('20 launches at once with BINDERY_MAX_SESSIONS_PER_REPO=3 start exactly 3 sessions', async () => {
    const web = await serve({ BINDERY_MAX_SESSIONS_PER_REPO: '3', BINDERY_LAUNCH_RATE_LIMIT: '0' });
    const since = Date.now();
    const finals = await launchAtOnce(web.url, 20);
    expect(ready(finals)).toHaveLength(3);
    for (const event of refused(finals)) {
      expect(event).toEqual({
        phase: 'failed',
        status_code: 429,
        message: `Too many users running git/${repo.url}! Try again soon.\n`,
      });
    }
    // Not one container more was started, not even for a moment.
    expect(await startedSince(web.namespace, since)).toHaveLength(3);
    expect(await sessionsOf(web.namespace)).toHaveLength(3);
  }, 300_000);

  test('20 launches at once with BINDERY_MAX_SESSIONS=3 start exactly 3 sessions', async () => {
    const web = await serve({ BINDERY_MAX_SESSIONS: '3', BINDERY_LAUNCH_RATE_LIMIT: '0' });
    const since = Date.now();
    const finals = await launchAtOnce(web.url, 20);
    expect(ready(finals)).toHaveLength(3);
    for (const event of refused(finals)) {
      expect(event).toEqual({
        phase: 'failed',
        status_code: 429,
        message: 'Too many users on this BinderHub! Try again soon.\n',
      });
    }
    // Not one container more was started, not even for a moment.
    expect(await startedSince(web.namespace, since)).toHaveLength(3);
    expect(await sessionsOf(web.namespace)).toHaveLength(3);
  }, 300_000);

  test('addresses of one IPv6 /64 share one per-client limit; another /64 has its own', async () => {
    const web = await serve({
      BINDERY_MAX_SESSIONS_PER_CLIENT: '2',
      BINDERY_LAUNCH_RATE_LIMIT: '0',
    });
    // The service trusts X-Forwarded-For from loopback, as behind a reverse proxy.
    const finals = await launchAtOnce(web.url, 6, (i) => ({
      'x-forwarded-for': `2001:db8:7:7::${i + 1}`,
    }));
    expect(ready(finals)).toHaveLength(2);
    expect(refused(finals)).toHaveLength(4);
    const [other] = await launchAtOnce(web.url, 1, () => ({
      'x-forwarded-for': '2001:db8:7:8::1',
    }));
    expect(other).toEqual(expect.objectContaining({ phase: 'ready' }));
  }, 300_000);

  test('a slot comes back when its session is culled', async () => {
    const web = await serve({
      BINDERY_MAX_SESSIONS_PER_CLIENT: '1',
      BINDERY_LAUNCH_RATE_LIMIT: '0',
    });
    const [first] = await launchAtOnce(web.url, 1);
    expect(first).toEqual(expect.objectContaining({ phase: 'ready' }));
    const [second] = await launchAtOnce(web.url, 1);
    expect(second).toMatchObject({ phase: 'failed', status_code: 429 });
    const routes = new RedisRouteTable(redis, { prefix: web.namespace, cacheTtlMs: 0 });
    const later = Date.now() + 3_600_000;
    const culled = await cullSessions({
      engine,
      store: web.store,
      routes,
      config: web.config,
      now: () => later,
    });
    expect(culled).toHaveLength(1);
    const [third] = await launchAtOnce(web.url, 1);
    expect(third).toEqual(expect.objectContaining({ phase: 'ready' }));
  }, 300_000);
});

describe('the launch rate limit counts clients per IPv6 /64', () => {
  test('a second address in the same /64 is refused; another /64 and IPv4 are not', async () => {
    const web = await serve({ BINDERY_LAUNCH_RATE_LIMIT: '1' });
    // A repository that does not exist: a launch the rate limit lets through ends at 404, cheaply.
    const launch = `${web.url}/build/git/${encodeURIComponent(`${git.url}/nothing.git`)}/HEAD`;
    const from = async (address: string) =>
      (await readEventStream(launch, { headers: { 'x-forwarded-for': address } })).events.at(-1);
    expect(await from('2001:db8:1:2::a')).toMatchObject({ status_code: 404 });
    expect(await from('2001:db8:1:2:ffff::b')).toEqual({
      phase: 'failed',
      status_code: 429,
      message: expect.stringMatching(
        /^Too many launches from 2001:db8:1:2::\/64 \(more than 1 a minute\)/,
      ),
    });
    expect(await from('2001:db8:1:3::a')).toMatchObject({ status_code: 404 });
    expect(await from('::ffff:198.51.100.7')).toMatchObject({ status_code: 404 });
    expect(await from('198.51.100.7')).toMatchObject({
      status_code: 429,
      message: expect.stringContaining('Too many launches from 198.51.100.7 '),
    });
  }, 60_000);
});

describe('a ban holds however the spec is written', () => {
  test('case, other escapes and doubled slashes do not get a banned repository launched', async () => {
    const { port } = new URL(git.url);
    const web = await serve({
      BINDERY_BANNED_SPECS: `^git/http://127\\.0\\.0\\.1:${port}/demo\\.git/,^gh/evil/repo/`,
      // gh specs resolve against the loopback git server, so nothing leaves this machine.
      GHE_HOST: `127.0.0.1:${port}`,
      GHE_PROTOCOL: 'http',
      BINDERY_LAUNCH_RATE_LIMIT: '0',
    });
    const escapedUrl = encodeURIComponent(repo.url);
    const attempts = [
      `git/${escapedUrl}/HEAD`,
      `git/${escapedUrl.toLowerCase()}/HEAD`,
      `git/${escapedUrl.replace('demo', '%2564emo')}/HEAD`,
      `git/${escapedUrl.replace('demo', '%64emo')}/main`,
      `git/${escapedUrl.replace('%2Fdemo', '%2F%2Fdemo')}/HEAD`,
      `git/${encodeURIComponent(repo.url.replace('http:', 'HTTP:'))}/${repo.sha}`,
    ];
    for (const attempt of attempts) {
      const { events } = await readEventStream(`${web.url}/build/${attempt}`);
      expect({ attempt, events }).toEqual({
        attempt,
        events: [
          {
            phase: 'failed',
            status_code: 403,
            message: expect.stringMatching(/^git\/.* is not allowed on this service\.\n$/),
          },
        ],
      });
    }
    for (const attempt of ['gh/Evil/Repo/HEAD', 'gh/EVIL/repo.git/main', 'gh/evil/REPO/x']) {
      const { events } = await readEventStream(`${web.url}/build/${attempt}`);
      expect({ attempt, events }).toEqual({
        attempt,
        events: [
          {
            phase: 'failed',
            status_code: 403,
            message: expect.stringMatching(/^gh\/evil\/repo is not allowed on this service\.\n$/i),
          },
        ],
      });
    }
    expect(await sessionsOf(web.namespace)).toHaveLength(0);
    // What is not banned is not refused: this one goes on to find no repository.
    const { events } = await readEventStream(
      `${web.url}/build/git/${encodeURIComponent(`${git.url}/nothing.git`)}/HEAD`,
    );
    expect(events).toEqual([expect.objectContaining({ phase: 'failed', status_code: 404 })]);
  }, 300_000);
});
