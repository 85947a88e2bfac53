import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { BuildEvent } from '../../src/build-event.js';
import { buildLogKey } from '../../src/queue/build-log.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { startService } from '../../src/service.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * Redis is Bindery's only state. Started as set-up starts it (deploy/redis.conf: append-only
 * file, flushed every second), a Redis killed mid-build and started again on its data directory
 * still holds the queued build, its log and the session records: the build ends `built` and
 * the session answers. This file's Redis is its own (own port, own data directory); the shared
 * one on 6379 is never touched.
 */

const CONF = join(import.meta.dirname, '../../deploy/redis.conf');
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const TOKEN = `rr-${run}`;
const escaped = (url: string) => encodeURIComponent(url);

let port: number;
let dir: string;
let redisServer: ChildProcess | undefined;
let redisUrl: string;
let git: GitServer;
let service: TestService;

async function startRedis(): Promise<void> {
  const child = spawn('redis-server', [CONF, '--port', String(port), '--dir', dir], {
    stdio: 'ignore',
  });
  redisServer = child;
  const probe = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => 100 });
  try {
    await waitFor(
      async () => (await probe.ping().catch(() => '')) === 'PONG',
      'Redis to answer',
      20_000,
    );
  } finally {
    probe.disconnect();
  }
}

async function killRedis(): Promise<void> {
  const child = redisServer!;
  redisServer = undefined;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

beforeAll(async () => {
  port = await freePort();
  redisUrl = `redis://127.0.0.1:${port}`;
  dir = await mkdtemp(join(tmpdir(), `bindery-redis-${run}-`));
  await startRedis();
  git = await startGitServer();
  service = await startTestService('rr', { REDIS_URL: redisUrl, BINDERY_API_TOKENS: TOKEN });
}, 120_000);

afterAll(async () => {
  await service?.remove().catch(() => {});
  await git?.close();
  if (redisServer) await killRedis();
  await rm(dir, { recursive: true, force: true });
}, 120_000);

test('the append-only file is on: Redis writes it in its data directory', async () => {
  const redis = new Redis(redisUrl);
  try {
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
  } finally {
    redis.disconnect();
  }
  expect(await readdir(dir)).toContain('appendonlydir');
});

test('Redis killed mid-build and started again: the build ends built with its earlier log, the session record and route survive and the session answers', async () => {
  // A session, launched and recorded before the restart.
  const repo = await git.publish('demo', FIXTURE);
  const launched = await readEventStream(`${service.url}/build/git/${escaped(repo.url)}/HEAD`);
  const ready = launched.events.at(-1)!;
  expect(ready).toMatchObject({ phase: 'ready' });
  const sessionUrl = String(ready.url);
  const name = /\/user\/([^/]+)\//.exec(sessionUrl)![1]!;
  expect((await fetch(`${sessionUrl}api/status?token=${ready.token}`)).status).toBe(200);

  // A build that takes a while: its postBuild says one line, sleeps, then says another.
  const sha = await git.commit('demo', {
    postBuild: [
      '#!/bin/sh',
      `echo "before the restart ${run}"`,
      'sleep 30',
      `echo "after the restart ${run}"`,
      '',
    ].join('\n'),
  });
  // Its client follows the log through the restart, as a launch page does.
  let sawBefore: () => void;
  const before = new Promise<void>((resolve) => (sawBefore = resolve));
  const building = readEventStream(
    `${service.url}/build/git/${escaped(repo.url)}/${sha}?build_only=true`,
    {
      headers: { authorization: `Bearer ${TOKEN}` },
      onEvent: (event) => {
        if (String(event.message).includes(`before the restart ${run}`)) sawBefore();
      },
    },
  );
  await Promise.race([
    before,
    building.then(({ events }) => {
      throw new Error(`the build ended early: ${JSON.stringify(events.slice(-3))}`);
    }),
  ]);
  // Older than one second, the line is on disk (appendfsync everysec): the kill loses nothing
  // written before it.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await killRedis();
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  await startRedis();

  const redis = new Redis(redisUrl);
  try {
    // The session's record and route came back from the append-only file.
    const store = new SessionStore(redis, service.namespace);
    expect(await store.get(name)).toMatchObject({ name });
    const routes = new RedisRouteTable(redis, { prefix: service.namespace });
    expect(await routes.get(name)).toBeDefined();
    expect((await fetch(`${sessionUrl}api/status?token=${ready.token}`)).status).toBe(200);
    // A web process started now has no route in memory: it reads it from the restarted Redis.
    const fresh = await startService({
      config: { ...service.config, port: 0 },
      namespace: service.namespace,
      host: '127.0.0.1',
      roles: ['web'],
      log: quietLog,
    });
    try {
      const path = new URL(sessionUrl).pathname;
      const answer = await fetch(`${fresh.url}${path}api/status?token=${ready.token}`);
      expect(answer.status).toBe(200);
    } finally {
      await fresh.close();
    }

    // The build goes on and ends built; its log still holds the line from before the kill.
    const queues = await redis.keys(`bull:*${service.namespace}:meta`);
    expect(queues).toHaveLength(1);
    // BullMQ leaves a connection it was given open: this one is closed below.
    const connection = redis.duplicate();
    const queue = new Queue(queues[0]!.slice('bull:'.length, -':meta'.length), { connection });
    try {
      const jobs = await queue.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed']);
      const job = jobs.find((each) => String(each.data?.imageName).endsWith(`:${sha}`));
      expect(job).toBeDefined();
      const key = buildLogKey(String(job!.data.imageName));
      const readLog = async () =>
        ((await redis.xrange(key, '-', '+')) as [string, string[]][]).map(
          ([, fields]) => JSON.parse(fields[1]!) as BuildEvent,
        );
      await waitFor(
        async () =>
          (await readLog()).some(
            (event) =>
              event.phase !== 'building' && event.phase !== 'waiting' && event.phase !== 'fetching',
          ),
        'the end of the build',
        300_000,
      );
      const log = await readLog();
      const messages = log.map((event) => event.message).join('');
      expect(messages).toContain(`before the restart ${run}`);
      expect(messages).toContain(`after the restart ${run}`);
      expect(log.at(-1)).toMatchObject({ phase: 'built' });
      await waitFor(async () => (await job!.getState()) !== 'active', 'the job to end', 30_000);
      expect(await job!.getState()).toBe('completed');
      // The client saw the whole log, the outage only a pause in it, and the end.
      const seen = (await building).events;
      const lines = seen.map((event) => String(event.message)).join('');
      expect(lines).toContain(`before the restart ${run}`);
      expect(lines).toContain(`after the restart ${run}`);
      expect(seen.filter((event) => event.phase === 'failed')).toEqual([]);
      expect(seen.at(-1)).toMatchObject({ phase: 'ready', imageName: job!.data.imageName });
    } finally {
      await queue.close();
      connection.disconnect();
    }
  } finally {
    redis.disconnect();
  }
}, 600_000);
