import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createReverseProxy, type ReverseProxy } from '../../src/proxy/reverse-proxy.js';
import { cullSessions } from '../../src/sessions/cull-sessions.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { waitFor } from '../helpers/wait-for.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * A session's Jupyter decides what its /api/status says; a hostile one says whatever keeps it
 * alive. A stub server on loopback answers for it, one answer per session name, and the real
 * proxy in front of it records the visitor's requests as the service's does.
 */
const run = randomBytes(4).toString('hex');
const namespace = `bindery-test-cull-${run}`;
const redis = new Redis({ maxRetriesPerRequest: 1 });
const engine = new DockerEngine();
const store = new SessionStore(redis, namespace);
const routes = new RedisRouteTable(redis, { prefix: namespace, cacheTtlMs: 0 });
const IDLE_S = 600;
const config = { idleTimeoutSeconds: IDLE_S, maxAgeSeconds: 86_400 };

/** What the stub Jupyter answers for each session: a body, as JSON text. */
const answers = new Map<string, string>();
let jupyter: Server;
let target: string;
let clock = Date.now();
let proxy: ReverseProxy;
let proxyServer: Server;
let origin: string;

beforeAll(async () => {
  jupyter = createServer((request, response) => {
    const name = /^\/user\/([^/]+)\/api\/status/.exec(request.url ?? '')?.[1];
    // Any other path is the visitor's traffic, which Jupyter would answer.
    const body = name === undefined ? '{}' : answers.get(name);
    if (body === undefined) response.writeHead(404).end();
    else response.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => jupyter.listen(0, '127.0.0.1', resolve));
  target = `http://127.0.0.1:${(jupyter.address() as AddressInfo).port}`;

  proxy = createReverseProxy({
    routes,
    now: () => clock,
    activityIntervalMs: 0,
    onActivity: (name, at) => store.touch(name, at),
    log: quietLog,
  });
  proxyServer = createServer((request, response) => proxy.handleRequest(request, response));
  await new Promise<void>((resolve) => proxyServer.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(proxyServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  proxy.close();
  proxyServer.closeAllConnections();
  await new Promise((resolve) => proxyServer.close(resolve));
  jupyter.closeAllConnections();
  await new Promise((resolve) => jupyter.close(resolve));
  const keys = await redis.keys(`${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

/**
 * A session created two hours ago whose Jupyter answers `status`, with one request proxied
 * to it `proxiedAgoMs` before the cull.
 */
async function sessionAnswering(status: string, proxiedAgoMs: number, cullAt: number) {
  const name = `bindery-${randomBytes(6).toString('hex')}`;
  answers.set(name, status);
  await routes.set(name, { target });
  await store.save({
    name,
    // No such container: removing it is a no-op, as for a container that already exited.
    containerId: `missing-${name}`,
    image: 'stub',
    repo: 'git/stub',
    target,
    token: 'stub-token',
    createdAt: cullAt - 2 * 3_600_000,
  });
  clock = cullAt - proxiedAgoMs;
  const response = await fetch(`${origin}/user/${name}/api/contents`);
  expect(response.status).toBe(200);
  // The proxy records activity after answering, without holding up the request.
  const proxiedAt = clock;
  await waitFor(async () => (await store.lastActivity(name)) === proxiedAt, 'the proxied request');
  return name;
}

const malformed: [string, (now: number) => string][] = [
  ['missing', () => JSON.stringify({ started: '2020-01-01T00:00:00Z' })],
  ['not a date', () => JSON.stringify({ last_activity: 'forever' })],
  ['a number', () => JSON.stringify({ last_activity: 99_999_999 })],
  ['an object', () => JSON.stringify({ last_activity: { toString: 'now' } })],
  ['in the future', (now) => JSON.stringify({ last_activity: new Date(now + 86_400_000) })],
  ['far in the future', () => JSON.stringify({ last_activity: '9999-12-31T23:59:59Z' })],
  ['not JSON', () => 'last_activity: now'],
  [
    'in a body of a mebibyte',
    (now) => JSON.stringify({ padding: 'x'.repeat(2 ** 20), last_activity: new Date(now) }),
  ],
];

describe("a session whose Jupyter reports a malformed last_activity is idle since the proxy's last request", () => {
  test.each(malformed)(
    'last_activity %s, last proxied request past the idle timeout: culled',
    async (_what, answer) => {
      const now = Date.now();
      const name = await sessionAnswering(answer(now), (IDLE_S + 60) * 1000, now);
      expect(await cullSessions({ engine, store, routes, config, now: () => now })).toContain(name);
      expect(await store.get(name)).toBeUndefined();
      expect(await routes.get(name)).toBeUndefined();
    },
  );

  test.each(malformed)(
    'last_activity %s, last proxied request within the idle timeout: kept',
    async (_what, answer) => {
      const now = Date.now();
      const name = await sessionAnswering(answer(now), (IDLE_S - 60) * 1000, now);
      expect(await cullSessions({ engine, store, routes, config, now: () => now })).not.toContain(
        name,
      );
      expect(await store.get(name)).toBeDefined();
    },
  );
});

describe('a well-formed last_activity still counts', () => {
  test('recent kernel activity keeps a session the proxy has not seen for a while', async () => {
    const now = Date.now();
    const recent = JSON.stringify({ last_activity: new Date(now - 60_000).toISOString() });
    const name = await sessionAnswering(recent, (IDLE_S + 60) * 1000, now);
    expect(await cullSessions({ engine, store, routes, config, now: () => now })).not.toContain(
      name,
    );
  });

  test('old activity on both sides culls it', async () => {
    const now = Date.now();
    const old = JSON.stringify({ last_activity: new Date(now - 3_600_000).toISOString() });
    const name = await sessionAnswering(old, (IDLE_S + 60) * 1000, now);
    expect(await cullSessions({ engine, store, routes, config, now: () => now })).toContain(name);
  });
});

describe("the proxy's record of activity", () => {
  test('keeps the latest time when many web processes record at once', async () => {
    const name = `bindery-${randomBytes(6).toString('hex')}`;
    const base = Date.now();
    const times = Array.from({ length: 200 }, (_, i) => base + ((i * 7919) % 200));
    // One connection per writer, as separate web processes have.
    const writers = Array.from({ length: 8 }, () => new Redis({ maxRetriesPerRequest: 1 }));
    try {
      await Promise.all(
        times.map((at, i) =>
          new SessionStore(writers[i % writers.length]!, namespace).touch(name, at),
        ),
      );
      expect(await store.lastActivity(name)).toBe(Math.max(...times));
    } finally {
      for (const writer of writers) writer.disconnect();
    }
  });
});
