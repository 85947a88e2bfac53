import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Queue, type Worker } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import type { BuildJob } from '../../src/queue/build-job.js';
import { BuildLog, buildLogKey } from '../../src/queue/build-log.js';
import { BuildQueue } from '../../src/queue/build-queue.js';
import { createBuildWorker, type BuildFunction } from '../../workers/build-worker.js';
import type { Sandbox } from '../../src/sandbox/prepare-sandbox.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { createApp } from '../../src/web/create-app.js';
import { readEventStream } from '../helpers/event-stream.js';
import { waitFor } from '../helpers/wait-for.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
const namespace = `bindery-test-logs-${run}`;
const prefix = `bindery-test/l${run}-`;
const SHA = 'c'.repeat(40);

/** An image name of this run: `<prefix><name>:<sha>`, shaped as Bindery names images. */
const imageOf = (name: string) => `${prefix}${name}:${SHA}`;

const jobFor = (imageName: string, installationId?: number): BuildJob => ({
  imageName,
  ref: SHA,
  spec: {
    provider: 'gh',
    url: 'https://github.com/owner/repo',
    ref: 'HEAD',
    buildSlug: 'gh-owner-2drepo',
    repoLabel: 'gh/owner/repo',
  },
  ...(installationId !== undefined && { installationId }),
});

/** The build of `running` images waits here until the test lets it end. */
let finishRunning: () => void = () => {};
const runningMayFinish = new Promise<void>((resolve) => (finishRunning = resolve));

/** A stand-in for the builder: a few log lines, one with HTML in it, and a pause when asked. */
const build: BuildFunction = async (job, onEvent) => {
  onEvent({ phase: 'fetching', message: 'Fetching https://github.com/owner/repo...\n' });
  onEvent({ phase: 'building', message: 'Step 1/2 : FROM bindery/base\n' });
  onEvent({ phase: 'building', message: 'echo "<b>tags</b> & more"\n' });
  if (job.imageName.includes('-running:')) await runningMayFinish;
  onEvent({ phase: 'built', message: `Built image ${job.imageName}\n`, imageName: job.imageName });
};

/** The log page reads Redis only; the parts of the app it never touches fail loudly if it did. */
const unusedSandbox: Sandbox = {
  network: 'unused',
  policy: { bridge: 'unused', ports: [], allowCidrs: [], hostAddresses: [], resolvers: [] },
  check: () => Promise.reject(new Error('the log page does not check the sandbox')),
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
  const log = new BuildLog(producer);
  queue = new BuildQueue({ connection: producer, log, queueName: namespace });
  worker = createBuildWorker({
    connection: workerRedis,
    log: new BuildLog(workerRedis),
    build,
    concurrency: 3,
    queueName: namespace,
  });
  const app = createApp({
    config: loadConfig({}),
    engine: new DockerEngine(),
    resolve: () => Promise.reject(new Error('the log page resolves no specs')),
    builds: queue,
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
  finishRunning();
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

async function get(path: string) {
  const response = await fetch(`${url}${path}`);
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** Builds `imageName` with the test's worker and waits until the queue has seen it end. */
async function buildToTheEnd(imageName: string, installationId?: number) {
  await queue.enqueue(jobFor(imageName, installationId));
  await waitFor(async () => (await queue.details(imageName))?.finishedAt !== undefined);
}

const notFound = (imageName: string) =>
  `No build log for ${imageName}: it never ran here, or its log expired after 7 days.`;

describe('GET /logs/<image name>', () => {
  test('a finished build: its lines, escaped, state built, its times, and no refresh', async () => {
    const image = imageOf('done');
    await buildToTheEnd(image);

    const page = await get(`/logs/${image}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.body).toContain(`<div class="image">${image}</div>`);
    expect(page.body).toContain('<span id="state" class="state built">built</span>');
    expect(page.body).toContain('Step 1/2 : FROM bindery/base\n');
    expect(page.body).toContain('echo &#34;&#60;b&#62;tags&#60;/b&#62; &#38; more&#34;\n');
    expect(page.body).not.toContain('<b>tags</b>');
    expect(page.body).toContain(`Built image ${image}\n`);
    expect(page.body).toMatch(/<dt>Started<\/dt>\s*<dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/dd>/);
    expect(page.body).toMatch(/<dt>Duration<\/dt>\s*<dd>\d+ s<\/dd>/);
    expect(page.body).not.toContain('http-equiv="refresh"');

    // The check run's link may arrive with the name's `/` and `:` escaped.
    const escaped = await get(`/logs/${encodeURIComponent(image)}`);
    expect(escaped.status).toBe(200);
    expect(escaped.body).toContain('<span id="state" class="state built">built</span>');
  });

  test('a running build: state building, its lines so far, then the rest live from where the page ended', async () => {
    const image = imageOf('running');
    await queue.enqueue(jobFor(image));
    await waitFor(async () =>
      (await queue.read(image)).some((event) => event.message.startsWith('echo')),
    );

    const page = await get(`/logs/${image}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<span id="state" class="state building">building</span>');
    expect(page.body).toContain('This page follows the build as it runs.');
    expect(page.body).toContain('<script src="/static/log.js" defer></script>');
    expect(page.body).not.toContain('http-equiv="refresh"');
    expect(page.body).toContain('Step 1/2 : FROM bindery/base\n');
    expect(page.body).toMatch(/<dt>Running for<\/dt>/);
    const after = /data-after="(\d+-\d+)"/.exec(page.body)![1]!;
    expect(after).toBe((await queue.entries(image)).at(-1)!.id);

    // What log.js asks for: the entries after the last one the page showed, to the end.
    const rest = readEventStream(`${url}/logs/${encodeURIComponent(image)}?after=${after}`);
    const resumed = readEventStream(`${url}/logs/${image}`, {
      headers: { 'last-event-id': after },
    });
    const whole = readEventStream(`${url}/logs/${image}`);
    finishRunning();
    for (const stream of [await rest, await resumed]) {
      expect(stream.status).toBe(200);
      expect(stream.events).toEqual([expect.objectContaining({ phase: 'built' })]);
    }
    expect((await whole).events.map((event) => event.phase)).toEqual([
      'waiting',
      'fetching',
      'building',
      'building',
      'built',
    ]);
    await waitFor(async () => (await queue.details(image))?.finishedAt !== undefined);
    const ended = await get(`/logs/${image}`);
    expect(ended.body).toContain('<span id="state" class="state built">built</span>');
    expect(ended.body).not.toContain('log.js');
    // A reader that had seen the final event is told nothing more, and is not kept waiting.
    const last = (await queue.entries(image)).at(-1)!.id;
    expect(
      (await readEventStream(`${url}/logs/${image}`, { headers: { 'last-event-id': last } }))
        .events,
    ).toEqual([]);
  });

  test('the page links to the launch page of its commit', async () => {
    const image = imageOf('linked');
    await buildToTheEnd(image);
    const page = await get(`/logs/${image}`);
    expect(page.body).toContain(`href="/v2/gh/owner/repo/${SHA}"`);
  });

  test('an image that never built here is 404 with a sentence', async () => {
    const image = imageOf('never');
    const page = await get(`/logs/${image}`);
    expect(page.status).toBe(404);
    expect(page.body).toContain(notFound(image));
  });

  test("a private repository's log is 404 and reads exactly like a missing one", async () => {
    const image = imageOf('private');
    await buildToTheEnd(image, 4242);
    // The log is there: the page hides it, not the lack of it.
    expect((await queue.read(image)).at(-1)?.phase).toBe('built');

    const page = await get(`/logs/${image}`);
    expect(page.status).toBe(404);
    expect(page.body).toContain(notFound(image));
    expect(page.body).not.toContain('Step 1/2');
    const missing = await get(`/logs/${imageOf('absent')}`);
    expect(page.body.replaceAll(image, 'IMAGE')).toBe(
      missing.body.replaceAll(imageOf('absent'), 'IMAGE'),
    );
  });

  test.each([
    ['no tag', '/logs/bindery/r2d-gh-owner-2drepo-1a2b3c'],
    ['upper case and spaces', '/logs/Not%20An%20Image:tag'],
    ['HTML', '/logs/%3Cscript%3E:tag'],
    ['a malformed escape', '/logs/bindery%E0%A4%A:tag'],
  ])(
    'a name that is not an image name (%s) is 400 saying what a log address is',
    async (_, path) => {
      const page = await get(path);
      expect(page.status).toBe(400);
      expect(page.body).toContain('A build log address is /logs/&#60;image name&#62;');
      expect(page.body).not.toContain('<script>');
    },
  );
});
