import { afterAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { binderLinks } from '../../src/repos/binder-links.js';
import { parseSpec } from '../../src/repos/repo-spec.js';
import { launchSession } from '../../src/sessions/launch-session.js';
import { reconcileSessions } from '../../src/sessions/reconcile-sessions.js';
import { SessionStore, type SlotRequest } from '../../src/sessions/session-store.js';
import { waitFor } from '../helpers/wait-for.js';

/** The quota reservations in Redis itself: what one web process or many see, at once. */
const exec = promisify(execFile);
const run = randomBytes(4).toString('hex');
const containers: string[] = [];
const redis = new Redis({ maxRetriesPerRequest: 1 });
const namespaces: string[] = [];
const storeFor = () => {
  const namespace = `bindery-test-slots-${run}-${namespaces.length}`;
  namespaces.push(namespace);
  return new SessionStore(redis, namespace);
};

afterAll(async () => {
  for (const name of containers) await new DockerEngine().removeContainer(name);
  for (const namespace of namespaces) {
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis.quit();
});

const limits = { maxSessions: 0, maxSessionsPerRepo: 0, maxSessionsPerClient: 0 };
const slot = (overrides: Partial<SlotRequest> = {}): SlotRequest => ({
  name: `bindery-${randomBytes(6).toString('hex')}`,
  repo: 'gh/a/b',
  client: '203.0.113.7',
  limits,
  leaseMs: 60_000,
  ...overrides,
});
const record = (name: string, client?: string) => ({
  name,
  containerId: name,
  image: 'image',
  repo: 'gh/a/b',
  target: 'http://127.0.0.1:1',
  token: 'token',
  createdAt: Date.now(),
  ...(client === undefined ? {} : { client }),
});

describe('SessionStore.reserve', () => {
  test('50 reservations at once against a cap of 3 reserve exactly 3', async () => {
    const store = storeFor();
    const capped = { ...limits, maxSessionsPerClient: 3 };
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => store.reserve(slot({ limits: capped }))),
    );
    expect(answers.filter((answer) => answer === undefined)).toHaveLength(3);
    expect(answers.filter((answer) => answer === 'client')).toHaveLength(47);
  });

  test('counts running sessions and launches under way together, per cap', async () => {
    const store = storeFor();
    const first = slot();
    expect(await store.reserve(first)).toBeUndefined();
    expect(await store.confirm(record(first.name, first.client))).toBe(true);
    expect(await store.reserve(slot())).toBeUndefined(); // under way
    expect(await store.reserve(slot({ limits: { ...limits, maxSessions: 2 } }))).toBe('total');
    expect(await store.reserve(slot({ limits: { ...limits, maxSessionsPerRepo: 2 } }))).toBe(
      'repo',
    );
    expect(await store.reserve(slot({ limits: { ...limits, maxSessionsPerClient: 2 } }))).toBe(
      'client',
    );
    // Another client, another repository: only the caps that count them apply.
    const capped = { maxSessions: 0, maxSessionsPerRepo: 2, maxSessionsPerClient: 2 };
    expect(await store.reserve(slot({ client: '198.51.100.1', limits: capped }))).toBe('repo');
    expect(
      await store.reserve(slot({ client: '198.51.100.1', repo: 'gh/c/d', limits: capped })),
    ).toBeUndefined();
    // API token holders (no client) are not counted per client.
    expect(
      await store.reserve(slot({ client: undefined, repo: 'gh/e/f', limits: capped })),
    ).toBeUndefined();
  });

  test('a slot comes back when its launch fails or its session is removed', async () => {
    const store = storeFor();
    const one = { ...limits, maxSessionsPerClient: 1 };
    const failing = slot({ limits: one });
    expect(await store.reserve(failing)).toBeUndefined();
    expect(await store.reserve(slot({ limits: one }))).toBe('client');
    await store.release(failing.name);
    const running = slot({ limits: one });
    expect(await store.reserve(running)).toBeUndefined();
    expect(await store.confirm(record(running.name, running.client))).toBe(true);
    expect(await store.reserve(slot({ limits: one }))).toBe('client');
    await store.remove(running.name);
    expect(await store.reserve(slot({ limits: one }))).toBeUndefined();
  });

  test('a reservation whose process died stops counting when its lease ends, and cannot be confirmed', async () => {
    const store = storeFor();
    const one = { ...limits, maxSessionsPerClient: 1 };
    const orphan = slot({ limits: one, leaseMs: 300 });
    expect(await store.reserve(orphan)).toBeUndefined();
    await waitFor(
      async () => (await store.reserve(slot({ limits: one }))) === undefined,
      'the lease to end',
      10_000,
    );
    expect(await store.confirm(record(orphan.name, orphan.client))).toBe(false);
    expect(await store.get(orphan.name)).toBeUndefined();
  });
});

describe('launchSession', () => {
  test('a launch that fails gives its slot back', async () => {
    const store = storeFor();
    const config = loadConfig({ BINDERY_MAX_SESSIONS_PER_CLIENT: '1' });
    const spec = parseSpec('gh', 'a/b/HEAD');
    const request = {
      // No such image: the container cannot be created.
      image: `bindery-test/no-such-image-${run}:latest`,
      repo: spec.repoLabel,
      links: binderLinks(spec, 'f'.repeat(40), config.publicUrl),
      client: '203.0.113.9',
    };
    const deps = {
      engine: new DockerEngine(),
      config,
      store,
      routes: new RedisRouteTable(redis, { prefix: store.prefix }),
      sandbox: { network: 'bridge', check: async () => ({ ok: true, problems: [] }) },
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(launchSession(deps, request)).rejects.toThrow(/no-such-image|No such image/i);
    }
    expect(await store.reserve(slot({ client: request.client, limits: config.quotas }))).toBe(
      undefined,
    );
  });
});

describe('reconcileSessions', () => {
  test('leaves alone a container whose launch is under way in another web process', async () => {
    const store = storeFor();
    const engine = new DockerEngine();
    const routes = new RedisRouteTable(redis, { prefix: store.prefix });
    const launching = slot();
    containers.push(launching.name);
    // What another process's launch has made so far: a reserved slot and its container,
    // with no record until Jupyter answers.
    expect(await store.reserve(launching)).toBeUndefined();
    const base = loadConfig({}).baseImage;
    await exec('docker', [
      'create',
      '--name',
      launching.name,
      '--label',
      'bindery.kind=session',
      '--label',
      `bindery.store=${store.prefix}`,
      '--label',
      `bindery.session=${launching.name}`,
      base,
      'true',
    ]);
    const names = async () => (await engine.listSessions()).map((c) => c.name);
    expect((await reconcileSessions({ engine, store, routes })).removed).toEqual([]);
    expect(await names()).toContain(launching.name);
    // Once no launch claims it, it is an orphan nobody holds the token of.
    await store.release(launching.name);
    expect((await reconcileSessions({ engine, store, routes })).removed).toEqual([launching.name]);
    expect(await names()).not.toContain(launching.name);
  });
});
