import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Queue, type Worker } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { BuildError } from '../../src/errors.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import type { BuildJob } from '../../src/queue/build-job.js';
import { BuildLog, buildLogKey } from '../../src/queue/build-log.js';
import { BuildQueue } from '../../src/queue/build-queue.js';
import { compareStreamIds } from '../../src/queue/stream-followers.js';
import type { RepoSpec } from '../../src/repos/repo-spec.js';
import type { Sandbox } from '../../src/sandbox/prepare-sandbox.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { createApp } from '../../src/web/create-app.js';
import { createBuildWorker, type BuildFunction } from '../../workers/build-worker.js';
import { readEventStream } from '../helpers/event-stream.js';

/**
 * GET /build's event stream as a reconnecting client sees it: log events carry their entry id,
 * a request with Last-Event-ID gets only what came after, BinderHub's plain `data:` readers
 * still read every event, and a commit whose build failed is not built again unless asked.
 * A stand-in builder and `build_only` (an API token) keep Docker and sessions out of it.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
const namespace = `bindery-test-resume-${run}`;
const prefix = `bindery-test/r${run}-`;
const TOKEN = `token-${run}`;
const SHA = 'd'.repeat(40);

/** The build of a `held` image waits here after its first lines until the test lets it end. */
let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));
/** Called after each request's enqueue (or attach) returns. */
let afterEnqueue: (() => void) | undefined;
/** Builds of each image so far. */
const builds = new Map<string, number>();

const build: BuildFunction = async (job, onEvent) => {
  builds.set(job.imageName, (builds.get(job.imageName) ?? 0) + 1);
  onEvent({ phase: 'fetching', message: 'Fetching...\n' });
  onEvent({ phase: 'building', message: 'line-1\n' });
  onEvent({ phase: 'building', message: 'line-2\n' });
  if (job.imageName.includes('-held:')) await released;
  onEvent({ phase: 'building', message: 'line-3\n' });
  if (job.imageName.includes('-broken:')) throw new BuildError('postBuild exited with 3');
  onEvent({ phase: 'built', message: 'Built\n', imageName: job.imageName });
};

const unusedSandbox: Sandbox = {
  network: 'unused',
  policy: { bridge: 'unused', ports: [], allowCidrs: [], hostAddresses: [], resolvers: [] },
  check: () => Promise.reject(new Error('build_only launches nothing')),
};

let producer: Redis;
let workerRedis: Redis;
let queue: BuildQueue;
let worker: Worker;
let server: Server;
let url: string;

beforeAll(async () => {
  producer = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  queue = new BuildQueue({
    connection: producer,
    log: new BuildLog(producer),
    queueName: namespace,
  });
  worker = createBuildWorker({
    connection: workerRedis,
    log: new BuildLog(workerRedis),
    build,
    concurrency: 3,
    queueName: namespace,
  });
  const app = createApp({
    config: loadConfig({ BINDERY_API_TOKENS: TOKEN }),
    engine: new DockerEngine(),
    // `gh/owner/<name>/HEAD` is the image `<prefix><name>:<sha>`.
    resolve: (spec: RepoSpec) =>
      Promise.resolve({
        spec,
        ref: SHA,
        imageName: `${prefix}${spec.repoLabel.split('/')[2]}:${SHA}`,
      }),
    // The queue, telling the test when a request has enqueued or attached to a build.
    builds: Object.assign(Object.create(queue) as BuildQueue, {
      enqueue: async (job: BuildJob) => {
        const answer = await queue.enqueue(job);
        afterEnqueue?.();
        return answer;
      },
    }),
    store: new SessionStore(producer, namespace),
    routes: new RedisRouteTable(producer, { prefix: namespace }),
    sandbox: unusedSandbox,
    redis: producer,
    namespace,
    version: 'test',
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  release();
  await new Promise((resolve) => server.close(resolve));
  await worker.close();
  await queue.close();
  const admin = new Queue(namespace, { connection: producer });
  await admin.obliterate({ force: true });
  await admin.close();
  const logs = await producer.keys(`${buildLogKey(prefix)}*`);
  if (logs.length > 0) await producer.del(...logs);
  producer.disconnect();
  workerRedis.disconnect();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const buildUrl = (name: string, query = '') =>
  `${url}/build/gh/owner/${name}/HEAD?build_only=true${query}`;

/** The raw text of an event stream until `until` has arrived in it (or the stream ends). */
async function readRaw(address: string, headers: Record<string, string>, until?: string) {
  const controller = new AbortController();
  const response = await fetch(address, {
    headers: { accept: 'text/event-stream', ...auth, ...headers },
    signal: controller.signal,
  });
  let text = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (until && text.includes(until)) break;
    }
  } finally {
    controller.abort();
  }
  return text;
}

/** `[id, phase, message]` of each message block of a raw stream (id '' when it has none). */
const blocks = (raw: string) =>
  raw
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const id = /^id: (.*)$/m.exec(block)?.[1] ?? '';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as {
        phase: string;
        message: string;
      };
      return [id, data.phase, data.message];
    });

describe('GET /build as an event stream a client can resume', () => {
  test('log events carry their entry id; a reconnect with Last-Event-ID gets only what came after', async () => {
    const first = await readRaw(buildUrl('held'), {}, 'line-2');
    const seen = blocks(first);
    expect(seen.map(([, phase, message]) => [phase, message])).toEqual([
      ['waiting', 'Waiting for build to start...\n'],
      ['fetching', 'Fetching...\n'],
      ['building', 'line-1\n'],
      ['building', 'line-2\n'],
    ]);
    for (const [id] of seen) expect(id).toMatch(/^\d+-\d+$/);
    const lastId = seen.at(-1)![0]!;

    // The build goes on once the reconnected request has attached to it: a build that ended
    // before would be built again here, where the stand-in leaves no image.
    afterEnqueue = release;
    const resumed = readRaw(buildUrl('held'), { 'last-event-id': lastId });
    const rest = blocks(await resumed);
    expect(rest.map(([, phase, message]) => [phase, message])).toEqual([
      ['building', 'line-3\n'],
      ['built', 'Built\n'],
      ['ready', `Built ${prefix}held:${SHA}\n`],
    ]);
    // The log's events carry ids after the one the client had; `ready` is not in the log.
    expect(compareStreamIds(rest[0]![0]!, lastId)).toBeGreaterThan(0);
    expect(rest.at(-1)![0]).toBe('');
    expect(builds.get(`${prefix}held:${SHA}`)).toBe(1);
  });

  test("BinderHub's readers, which read only `data:` lines, still get every event", async () => {
    const { events } = await readEventStream(buildUrl('plain'), { headers: auth });
    expect(events.map((event) => event.phase)).toEqual([
      'waiting',
      'fetching',
      'building',
      'building',
      'building',
      'built',
      'ready',
    ]);
    expect(events[0]).toMatchObject({ imageName: `${prefix}plain:${SHA}` });
  });

  test('a failed commit is answered with its recorded failure, and built again only with rebuild=true', async () => {
    const image = `${prefix}broken:${SHA}`;
    const first = await readEventStream(buildUrl('broken'), { headers: auth });
    expect(first.events.at(-1)).toMatchObject({ phase: 'failed', imageName: image });
    expect(first.events.at(-1)?.message).toContain('postBuild exited with 3');
    expect(builds.get(image)).toBe(1);
    const entries = await queue.entries(image);

    const again = await readEventStream(buildUrl('broken'), { headers: auth });
    expect(again.events.map((event) => event.message)).toEqual(
      first.events.map((event) => event.message),
    );
    expect(builds.get(image)).toBe(1);
    expect(await queue.entries(image)).toEqual(entries);

    const rebuilt = await readEventStream(buildUrl('broken', '&rebuild=true'), { headers: auth });
    expect(rebuilt.events.at(-1)).toMatchObject({ phase: 'failed' });
    expect(builds.get(image)).toBe(2);
    expect((await queue.entries(image))[0]!.id).not.toBe(entries[0]!.id);
  });
});
