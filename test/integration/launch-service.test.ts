import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
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
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { freePort } from '../helpers/free-port.js';
import { removeTestSandbox, testSessionNetwork } from '../helpers/test-service.js';
import { quietLog } from '../helpers/capture-log.js';

const exec = promisify(execFile);
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const prefix = `bindery-test/s${run}-`;
/** The sandbox network of this file's services: its bridge and firewall chain are this file's. */
const network = testSessionNetwork(`ls${run}`);
const engine = new DockerEngine();
const redis = new Redis();

/** A whole service (web, worker, culler) in this process, on its own port and Redis keys. */
async function serve(namespace: string, env: Record<string, string> = {}) {
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
  return { service, config, url: service.url! };
}

const phases = (events: StreamEvent[]) =>
  events.map((event) => event.phase).filter((phase, i, all) => phase !== all[i - 1]);
const escaped = (url: string) => encodeURIComponent(url);

let git: GitServer;
let repo: { url: string; sha: string };
const services: RunningService[] = [];
const namespaces: string[] = [];

async function withService(
  env: Record<string, string> = {},
  namespace = `t${run}-${namespaces.length}`,
) {
  namespaces.push(namespace);
  const started = await serve(namespace, env);
  services.push(started.service);
  return { ...started, namespace };
}

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.publish('demo', FIXTURE);
}, 60_000);

afterAll(async () => {
  for (const service of services) await service.close();
  for (const container of await engine.listSessions()) {
    if (namespaces.includes(container.labels['bindery.store'] ?? ''))
      await engine.removeContainer(container.id);
  }
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
  await git.close();
}, 60_000);

describe('launching through /build, as a BinderHub client does', () => {
  let web: Awaited<ReturnType<typeof withService>>;
  let first: StreamEvent[];

  beforeAll(async () => {
    web = await withService();
  }, 60_000);

  test('builds a new commit, then launches it: the phases in order and the ready payload', async () => {
    const { status, events } = await readEventStream(
      `${web.url}/build/git/${escaped(repo.url)}/HEAD`,
    );
    first = events;
    expect(status).toBe(200);
    expect(phases(events)).toEqual([
      'waiting',
      'fetching',
      'building',
      'built',
      'launching',
      'ready',
    ]);
    const ready = events.at(-1)!;
    expect(ready).toMatchObject({
      phase: 'ready',
      url: expect.stringMatching(new RegExp(`^${web.url}/user/bindery-[0-9a-f]{12}/$`)),
      token: expect.stringMatching(/^[0-9a-f]{48}$/),
      image: expect.stringMatching(new RegExp(`^${prefix}.*:${repo.sha}$`)),
      repo_url: repo.url.replace(/\.git$/, ''),
      binder_ref_url: repo.url,
      binder_launch_host: `${web.url}/`,
      binder_request: `v2/git/${escaped(repo.url)}/HEAD`,
      binder_persistent_request: `v2/git/${escaped(repo.url)}/${repo.sha}`,
    });

    // The session answers through the proxy with its token, and only with it.
    const status200 = await fetch(`${ready.url}api/status?token=${ready.token}`);
    expect(status200.status).toBe(200);
    expect((await fetch(`${ready.url}api/status`)).status).toBe(403);
    // The session knows how it was launched, as BinderHub tells its sessions.
    const name = /\/user\/([^/]+)\//.exec(String(ready.url))![1]!;
    const { stdout } = await exec('docker', ['inspect', '-f', '{{json .Config.Env}}', name]);
    expect(JSON.parse(stdout)).toEqual(
      expect.arrayContaining([
        `BINDER_REPO_URL=${ready.repo_url}`,
        `BINDER_REF_URL=${ready.binder_ref_url}`,
        `BINDER_LAUNCH_HOST=${ready.binder_launch_host}`,
        `BINDER_REQUEST=${ready.binder_request}`,
        `BINDER_PERSISTENT_REQUEST=${ready.binder_persistent_request}`,
      ]),
    );
    // The service answers the session bar on the session's path itself, with the token only.
    const bar = await fetch(`${ready.url}_bindery/`, {
      headers: { authorization: `token ${String(ready.token)}` },
    });
    expect(bar.status).toBe(200);
    expect(await bar.text()).toContain('Download my work');
    expect((await fetch(`${ready.url}_bindery/`)).status).toBe(403);
  }, 300_000);

  test('a cached launch says "Found built image" and builds nothing', async () => {
    const { events } = await readEventStream(`${web.url}/build/git/${escaped(repo.url)}/main`);
    expect(phases(events)).toEqual(['built', 'launching', 'ready']);
    expect(events[0]).toMatchObject({ message: 'Found built image, launching...\n' });
    expect(events.at(-1)!.image).toBe(first.at(-1)!.image);
  }, 120_000);

  test('two launches of a new commit at once make one build and two sessions', async () => {
    const sha = await git.commit('demo', { 'notes.md': `# ${randomBytes(4).toString('hex')}\n` });
    const url = `${web.url}/build/git/${escaped(repo.url)}/${sha}`;
    const [a, b] = await Promise.all([readEventStream(url), readEventStream(url)]);
    for (const { events } of [a, b]) {
      expect(events.at(-1)).toMatchObject({ phase: 'ready', image: expect.stringContaining(sha) });
    }
    expect(a.events.at(-1)!.url).not.toBe(b.events.at(-1)!.url);
    // One build: its log holds one fetch; both clients replayed that same log.
    const fetches = (events: StreamEvent[]) => events.filter((e) => e.phase === 'fetching').length;
    expect([fetches(a.events), fetches(b.events)]).toEqual([1, 1]);
  }, 300_000);

  test('bad input gets a failed event with a status code and enqueues nothing', async () => {
    // This file's build logs only: other files' builds may start and end meanwhile.
    const before = await redis.keys(`build:${prefix}*`);
    const cases: [string, number, RegExp][] = [
      ['/build/gh/only-owner', 400, /GitHub specs look like gh\/OWNER\/REPO\/REF/],
      ['/build/svn/x/y', 400, /"svn" is not a repository provider/],
      [
        `/build/git/${escaped(repo.url)}/no-such-branch`,
        404,
        /has no branch or tag named "no-such-branch"/,
      ],
      [`/build/git/${escaped(`${git.url}/a/page`)}/HEAD`, 404, /is not a git repository/],
      ['/build/git/file%3A%2F%2F%2Fetc/HEAD', 400, /file URLs are not supported/],
    ];
    for (const [path, status, message] of cases) {
      const { events } = await readEventStream(`${web.url}${path}`);
      expect(events).toEqual([
        { phase: 'failed', status_code: status, message: expect.stringMatching(message) },
      ]);
    }
    expect(await redis.keys(`build:${prefix}*`)).toEqual(before);
  }, 60_000);

  test('/build without Accept: text/event-stream is a 400 that says what to send', async () => {
    const response = await fetch(`${web.url}/build/git/${escaped(repo.url)}/HEAD`);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('Accept: text/event-stream');
  });

  test('build_only needs an API token, and then ends at ready with the image', async () => {
    const url = `${web.url}/build/git/${escaped(repo.url)}/${repo.sha}?build_only=true`;
    const refused = await readEventStream(url);
    expect(refused.events).toEqual([
      {
        phase: 'failed',
        status_code: 403,
        message: expect.stringContaining('build_only needs an API token'),
      },
    ]);
    const wrong = await readEventStream(url, {
      headers: { authorization: 'Bearer not-the-token' },
    });
    expect(wrong.events).toEqual([
      {
        phase: 'failed',
        status_code: 403,
        message: 'The API token sent in Authorization is not one this service accepts.\n',
      },
    ]);
    const built = await readEventStream(url, { headers: { authorization: 'Bearer test-token' } });
    expect(built.events.at(-1)).toMatchObject({ phase: 'ready', imageName: first.at(-1)!.image });
    expect(built.events.some((e) => e.phase === 'launching')).toBe(false);
  }, 60_000);

  test('an idle session is culled: container, route and record go, the URL answers 404', async () => {
    const { events } = await readEventStream(`${web.url}/build/git/${escaped(repo.url)}/HEAD`);
    const ready = events.at(-1)!;
    const name = /\/user\/([^/]+)\//.exec(String(ready.url))![1]!;
    const store = new SessionStore(redis, web.namespace);
    const routes = new RedisRouteTable(redis, { prefix: web.namespace, cacheTtlMs: 0 });
    const session = (await store.get(name))!;
    expect(session).toBeDefined();

    // Not idle yet by the configured timeout; idle an hour from now.
    expect(await cullSessions({ engine, store, routes, config: web.config })).not.toContain(name);
    const culled = await cullSessions({
      engine,
      store,
      routes,
      config: web.config,
      now: () => Date.now() + 3_600_000,
    });
    expect(culled).toContain(name);
    expect(await store.get(name)).toBeUndefined();
    expect((await engine.listSessions()).map((c) => c.name)).not.toContain(name);
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the proxy caches found routes for 2 s
    expect((await fetch(`${ready.url}api/status?token=${ready.token}`)).status).toBe(404);
  }, 120_000);

  test('a session older than BINDERY_MAX_AGE is culled even when busy', async () => {
    const { events } = await readEventStream(`${web.url}/build/git/${escaped(repo.url)}/HEAD`);
    const name = /\/user\/([^/]+)\//.exec(String(events.at(-1)!.url))![1]!;
    const store = new SessionStore(redis, web.namespace);
    const routes = new RedisRouteTable(redis, { prefix: web.namespace, cacheTtlMs: 0 });
    const later = Date.now() + 5_000;
    await store.touch(name, later); // as active as can be
    const config = { idleTimeoutSeconds: 3600, maxAgeSeconds: 2 };
    expect(await cullSessions({ engine, store, routes, config, now: () => later })).toContain(name);
    expect(await routes.get(name)).toBeUndefined();
  }, 120_000);

  test('health, versions, metrics and badges answer', async () => {
    const health = await fetch(`${web.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      ok: true,
      checks: [
        { service: 'Docker', ok: true },
        { service: 'Redis', ok: true },
        { service: 'Sandbox', ok: true },
      ],
    });
    expect(await (await fetch(`${web.url}/versions`)).json()).toMatchObject({
      binderhub: expect.stringMatching(/^bindery-/),
    });
    const metrics = await (await fetch(`${web.url}/metrics`)).text();
    for (const name of [
      'binderhub_build_time_seconds',
      'binderhub_launch_time_seconds',
      'binderhub_build_count',
      'binderhub_launch_count',
      'binderhub_inprogress_builds',
      'binderhub_inprogress_launches',
    ]) {
      expect(metrics).toContain(`# TYPE ${name} `);
    }
    expect(metrics).toMatch(
      /binderhub_launch_count\{status="success",provider="git",repo="git\/[^"]+"\} [1-9]/,
    );
    const badge = await fetch(`${web.url}/badge_logo.svg`);
    expect(badge.headers.get('content-type')).toContain('image/svg+xml');
    const live = await (await fetch(`${web.url}/status/git/${escaped(repo.url)}/HEAD.svg`)).text();
    expect(live).toContain('binder: built');
    const page = await (
      await fetch(`${web.url}/v2/git/${escaped(repo.url)}/HEAD?labpath=index.ipynb`)
    ).text();
    expect(page).toContain(`/build/git/${escaped(repo.url)}/HEAD`);
    expect(page).toContain('data-urlpath="doc/tree/index.ipynb"');
    const legacy = await fetch(`${web.url}/repo/owner/name`, { redirect: 'manual' });
    expect(legacy.headers.get('location')).toBe('/v2/gh/owner/name/HEAD');
  }, 60_000);
});

describe('quotas and restarts', () => {
  test("a launch past the per-repository cap is refused with BinderHub's message", async () => {
    const web = await withService({ BINDERY_MAX_SESSIONS_PER_REPO: '1' });
    const url = `${web.url}/build/git/${escaped(repo.url)}/${repo.sha}`;
    expect((await readEventStream(url)).events.at(-1)).toMatchObject({ phase: 'ready' });
    expect((await readEventStream(url)).events.at(-1)).toEqual({
      phase: 'failed',
      status_code: 429,
      message: `Too many users running git/${repo.url}! Try again soon.\n`,
    });
  }, 120_000);

  test('launches without a token are rate-limited per client address', async () => {
    const web = await withService({ BINDERY_LAUNCH_RATE_LIMIT: '1' });
    const url = `${web.url}/build/git/${escaped(repo.url)}/HEAD?build_only=false`;
    await readEventStream(url);
    const { events } = await readEventStream(url);
    expect(events).toEqual([
      {
        phase: 'failed',
        status_code: 429,
        message: expect.stringMatching(/^Too many launches from .* \(more than 1 a minute\)/),
      },
    ]);
  }, 120_000);

  test('a restart of the service keeps its sessions reachable', async () => {
    const namespace = `t${run}-restart`;
    const before = await withService({}, namespace);
    const { events } = await readEventStream(`${before.url}/build/git/${escaped(repo.url)}/HEAD`);
    const ready = events.at(-1)!;
    expect(ready.phase).toBe('ready');
    const name = /\/user\/([^/]+)\//.exec(String(ready.url))![1]!;
    const labels = (await engine.listSessions()).find((c) => c.name === name)?.labels;
    expect(labels).toMatchObject({ 'bindery.kind': 'session', 'bindery.store': namespace });
    await before.service.close();
    services.splice(services.indexOf(before.service), 1);

    const port = new URL(before.url).port;
    const after = await serve(namespace, { PORT: port, BINDERY_PUBLIC_URL: before.url });
    services.push(after.service);
    const response = await fetch(`${ready.url}api/status?token=${ready.token}`);
    expect(response.status).toBe(200);
  }, 120_000);
});
