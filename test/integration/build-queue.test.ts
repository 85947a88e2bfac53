import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { Queue, type Worker } from 'bullmq';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RepositoryError, UnavailableError } from '../../src/errors.js';
import { jobIdFor, type BuildJob } from '../../src/queue/build-job.js';
import type { BuildEvent } from '../../src/build-event.js';
import { BuildLog, buildLogKey } from '../../src/queue/build-log.js';
import { BuildQueue, WAITING_EVENT } from '../../src/queue/build-queue.js';
import { createBuildWorker, type BuildFunction } from '../../workers/build-worker.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import type { Builds } from '../../src/web/web-deps.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = join(import.meta.dirname, '../..');
const REDIS_URL = 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
let serial = 0;
const cleanups: (() => Promise<unknown>)[] = [];

/** An image name no other test or run uses. */
const newImageName = () => `bindery-test/q${run}-${++serial}:${'0'.repeat(39)}${serial % 10}`;

/** A build job for `imageName` of a GitHub repository (the test's build functions ignore it). */
const jobFor = (imageName: string): BuildJob => ({
  imageName,
  ref: 'a'.repeat(40),
  spec: {
    provider: 'gh',
    url: 'https://github.com/owner/repo',
    ref: 'HEAD',
    buildSlug: 'gh-owner-2drepo',
    repoLabel: 'gh/owner/repo',
  },
});

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const seen: T[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

interface SetUpOptions {
  workers?: number;
  concurrency?: number;
  attempts?: number;
  timeoutMs?: number;
}

/**
 * A queue of its own with `workers` workers running `build`, on fresh connections; everything
 * (workers, queue, connections, the queue's keys and the logs written) goes in afterEach.
 */
function setUp(build: BuildFunction, options: SetUpOptions = {}) {
  const queueName = `bindery-test-${run}-${++serial}`;
  const producer = new Redis(REDIS_URL);
  const workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const log = new BuildLog(producer, { blockMs: 1_000 });
  const queue = new BuildQueue({
    connection: producer,
    log,
    queueName,
    attempts: options.attempts,
    backoffMs: 50,
  });
  const workers: Worker[] = [];
  const startWorker = (extra: { lockDuration?: number; stalledInterval?: number } = {}) => {
    const worker = createBuildWorker({
      connection: workerRedis,
      log: new BuildLog(workerRedis),
      build,
      concurrency: options.concurrency ?? 1,
      queueName,
      timeoutMs: options.timeoutMs,
      ...extra,
    });
    workers.push(worker);
    return worker;
  };
  for (let i = 0; i < (options.workers ?? 1); i++) startWorker();
  cleanups.push(async () => {
    for (const worker of workers) await worker.close();
    await queue.close();
    const admin = new Queue(queueName, { connection: producer });
    await admin.obliterate({ force: true });
    await admin.close();
    const logs = await producer.keys(`${buildLogKey(`bindery-test/q${run}-`)}*`);
    if (logs.length > 0) await producer.del(...logs);
    producer.disconnect();
    workerRedis.disconnect();
  });
  /** `imageName`'s job as the queue holds it, and how many jobs wait, run or wait for a retry. */
  const jobState = async (imageName: string) => {
    const admin = new Queue(queueName, { connection: producer });
    try {
      const job = await admin.getJob(jobIdFor(imageName));
      return {
        state: await job?.getState(),
        attemptsMade: job?.attemptsMade,
        unfinished: Object.values(
          await admin.getJobCounts('waiting', 'active', 'delayed', 'prioritized'),
        ).reduce((sum, count) => sum + count, 0),
      };
    } finally {
      await admin.close();
    }
  };
  /** When `imageName`'s job (its last try) started and ended, as BullMQ recorded them. */
  const jobTimes = async (imageName: string) => {
    const admin = new Queue(queueName, { connection: producer });
    try {
      const job = await admin.getJob(jobIdFor(imageName));
      return { processedOn: job?.processedOn, finishedOn: job?.finishedOn };
    } finally {
      await admin.close();
    }
  };
  return { queue, queueName, log, startWorker, jobState, jobTimes };
}

const RESTART_EVENT: BuildEvent = {
  phase: 'waiting',
  message: 'The worker building this image stopped; the build starts again.\n',
};

/**
 * Starts a build worker in a process of its own (test/helpers/build-worker-process.ts), waits
 * until its build of `imageName` has begun, and kills it with SIGKILL; returns its pid.
 */
async function killWorkerProcessMidBuild(
  queueName: string,
  log: BuildLog,
  imageName: string,
): Promise<number> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test/helpers/build-worker-process.ts'), queueName, REDIS_URL],
    {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const started = `Build started in process ${child.pid}\n`;
  await waitFor(async () => (await log.read(imageName)).some((event) => event.message === started));
  child.kill('SIGKILL');
  await exited;
  return child.pid!;
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const built = (imageName: string): BuildEvent => ({
  phase: 'built',
  message: `Built image ${imageName}\n`,
  imageName,
});

/**
 * The final event as the worker writes it: its phase and message, and how long this try took
 * (it travels with the event, so that no reader depends on BullMQ having recorded the job's end).
 */
const ended = (event: BuildEvent) => ({ ...event, durationMs: expect.any(Number) });

describe('build queue', () => {
  test('concurrent requests for one image attach to one build, and every follower gets all of it', async () => {
    let calls = 0;
    const { queue, log } = setUp(
      async (job, onEvent) => {
        calls++;
        onEvent({ phase: 'fetching', message: 'Fetching...\n' });
        for (const step of [1, 2, 3]) {
          await sleep(150);
          onEvent({ phase: 'building', message: `step ${step}\n` });
        }
        await sleep(150);
        // The builder's own `built`: the worker writes it once, as the final event.
        onEvent(built(job.imageName));
      },
      { workers: 2, concurrency: 2 },
    );
    // BuildQueue is what the web layer's Builds asks for.
    const builds: Builds = queue;
    const image = newImageName();

    const requests = await Promise.all([
      builds.enqueue(jobFor(image)),
      builds.enqueue(jobFor(image)),
      builds.enqueue(jobFor(image)),
    ]);
    expect(requests.map((request) => (request as { attached: boolean }).attached).sort()).toEqual([
      false,
      true,
      true,
    ]);
    const early = collect(builds.follow(image, new AbortController().signal));
    await waitFor(async () =>
      (await log.read(image)).some((event) => event.message === 'step 1\n'),
    );
    const midBuild = await log.read(image);
    expect(midBuild.at(-1)?.phase).toBe('building');
    expect(await queue.status(image)).toBe('building');
    const late = collect(builds.follow(image, new AbortController().signal));

    const whole = [
      WAITING_EVENT,
      { phase: 'fetching', message: 'Fetching...\n' },
      { phase: 'building', message: 'step 1\n' },
      { phase: 'building', message: 'step 2\n' },
      { phase: 'building', message: 'step 3\n' },
      ended(built(image)),
    ];
    expect(await early).toEqual(whole);
    expect(await late).toEqual(whole);
    expect(calls).toBe(1);
    // The finished log stays readable, for the build log page and the check run, and holds
    // one `built`: the worker writes it before BullMQ records the job as completed.
    await waitFor(async () => (await queue.status(image)) === undefined);
    expect(await log.read(image)).toEqual(whole);
  }, 20_000);

  test('a build failed by its repository is not retried, and followers get why', async () => {
    let calls = 0;
    const { queue, jobState } = setUp(async () => {
      calls++;
      throw new RepositoryError('This repository has both binder/ and .binder/; keep one of them.');
    });
    const image = newImageName();
    await queue.enqueue(jobFor(image));

    expect(await collect(queue.follow(image))).toEqual([
      WAITING_EVENT,
      ended({
        phase: 'failed',
        message: 'This repository has both binder/ and .binder/; keep one of them.\n',
      }),
    ]);
    await waitFor(async () => (await queue.status(image)) === 'failed');
    // Failed for good: a job to be tried again waits as `delayed`, and a failed one never runs.
    expect(await jobState(image)).toEqual({ state: 'failed', attemptsMade: 1, unfinished: 0 });
    expect(calls).toBe(1);
  }, 20_000);

  test('a build failed by an unavailable dependency is retried, says so, and succeeds', async () => {
    let calls = 0;
    const { queue } = setUp(async (_job, onEvent) => {
      calls++;
      onEvent({ phase: 'fetching', message: `Fetching, try ${calls}\n` });
      if (calls === 1) throw new UnavailableError('Docker did not answer.');
    });
    const image = newImageName();
    await queue.enqueue(jobFor(image));

    expect(await collect(queue.follow(image))).toEqual([
      WAITING_EVENT,
      { phase: 'fetching', message: 'Fetching, try 1\n' },
      {
        phase: 'waiting',
        message: 'Docker did not answer. The build starts again (attempt 2 of 3).\n',
      },
      { phase: 'fetching', message: 'Fetching, try 2\n' },
      ended(built(image)),
    ]);
    expect(calls).toBe(2);
  }, 20_000);

  test("the final event says how long the build's last try took, before the queue records its end", async () => {
    let calls = 0;
    const { queue, jobTimes } = setUp(async () => {
      calls++;
      // The first try takes long and fails; the second, which builds, takes 300 ms.
      await sleep(calls === 1 ? 1_000 : 300);
      if (calls === 1) throw new UnavailableError('Docker did not answer.');
    });
    const image = newImageName();
    await queue.enqueue(jobFor(image));

    const end = (await collect(queue.follow(image))).at(-1)!;
    expect(end).toEqual(ended(built(image)));
    expect(end.durationMs).toBeGreaterThanOrEqual(300);
    expect(end.durationMs).toBeLessThan(1_000);
    // The same span as the job's own times, which BullMQ writes after the final event.
    await waitFor(async () => (await queue.status(image)) === undefined);
    const { processedOn, finishedOn } = await jobTimes(image);
    expect(end.durationMs).toBeLessThanOrEqual(finishedOn! - processedOn!);
    expect(calls).toBe(2);
  }, 20_000);

  test('only the last try of a build that keeps failing writes `failed`', async () => {
    let calls = 0;
    const { queue } = setUp(
      async () => {
        calls++;
        throw new Error('connect ECONNREFUSED /var/run/docker.sock');
      },
      { attempts: 2 },
    );
    const image = newImageName();
    await queue.enqueue(jobFor(image));

    expect(await collect(queue.follow(image))).toEqual([
      WAITING_EVENT,
      {
        phase: 'waiting',
        message:
          'connect ECONNREFUSED /var/run/docker.sock The build starts again (attempt 2 of 2).\n',
      },
      ended({ phase: 'failed', message: 'connect ECONNREFUSED /var/run/docker.sock\n' }),
    ]);
    await waitFor(async () => (await queue.status(image)) === 'failed');
    expect(calls).toBe(2);
  }, 20_000);

  test('a build past the time limit is stopped and not retried', async () => {
    let calls = 0;
    let stopped = false;
    const { queue, jobState } = setUp(
      async (_job, _onEvent, signal) => {
        calls++;
        await sleep(60_000, undefined, { signal }).catch(() => (stopped = true));
      },
      { timeoutMs: 1_000 },
    );
    const image = newImageName();
    await queue.enqueue(jobFor(image));

    const end = (await collect(queue.follow(image))).at(-1);
    expect(end).toEqual(
      ended({
        phase: 'failed',
        message: "The build took longer than 1 s, this service's limit, and was stopped.\n",
      }),
    );
    expect(end!.durationMs).toBeGreaterThanOrEqual(1_000);
    expect(stopped).toBe(true);
    await waitFor(async () => (await queue.status(image)) === 'failed');
    expect(await jobState(image)).toEqual({ state: 'failed', attemptsMade: 1, unfinished: 0 });
    expect(calls).toBe(1);
  }, 20_000);

  test('a new request after a failed or finished build builds again, and its log starts afresh', async () => {
    let calls = 0;
    const { queue } = setUp(async (_job, onEvent) => {
      calls++;
      onEvent({ phase: 'fetching', message: `build ${calls}\n` });
      if (calls === 1) throw new RepositoryError('The repository is broken.');
    });
    const image = newImageName();

    expect(await queue.enqueue(jobFor(image))).toEqual({ attached: false });
    expect((await collect(queue.follow(image))).at(-1)?.phase).toBe('failed');
    // The worker writes the end of the log just before BullMQ records the job as failed.
    await waitFor(async () => (await queue.status(image)) === 'failed');

    expect(await queue.enqueue(jobFor(image))).toEqual({ attached: false });
    expect(await collect(queue.follow(image))).toEqual([
      WAITING_EVENT,
      { phase: 'fetching', message: 'build 2\n' },
      ended(built(image)),
    ]);
    await waitFor(async () => (await queue.status(image)) === undefined);

    // A completed job (its image since removed) does not stop a new build either.
    expect(await queue.enqueue(jobFor(image))).toEqual({ attached: false });
    expect(await collect(queue.follow(image))).toEqual([
      WAITING_EVENT,
      { phase: 'fetching', message: 'build 3\n' },
      ended(built(image)),
    ]);
    expect(calls).toBe(3);
  }, 20_000);

  test('a worker killed mid-build loses nothing: another worker builds and the follower gets the end', async () => {
    let parentCalls = 0;
    const { queue, queueName, log, startWorker } = setUp(
      async (job, onEvent) => {
        parentCalls++;
        onEvent({ phase: 'fetching', message: `Build started in process ${process.pid}\n` });
        await sleep(100);
        onEvent(built(job.imageName));
      },
      { workers: 0 },
    );
    const image = newImageName();
    await queue.enqueue(jobFor(image));
    const follower = collect(queue.follow(image));

    const child = await killWorkerProcessMidBuild(queueName, log, image);
    startWorker({ lockDuration: 2_000, stalledInterval: 1_000 });

    expect(await follower).toEqual([
      WAITING_EVENT,
      { phase: 'fetching', message: `Build started in process ${child}\n` },
      RESTART_EVENT,
      { phase: 'fetching', message: `Build started in process ${process.pid}\n` },
      ended(built(image)),
    ]);
    expect(parentCalls).toBe(1);
  }, 30_000);

  test('a build whose workers keep dying fails, and its followers get the end', async () => {
    let parentCalls = 0;
    const { queue, queueName, log, startWorker } = setUp(
      async () => {
        parentCalls++;
      },
      { workers: 0 },
    );
    const image = newImageName();
    await queue.enqueue(jobFor(image));
    const follower = collect(queue.follow(image));

    const first = await killWorkerProcessMidBuild(queueName, log, image);
    const second = await killWorkerProcessMidBuild(queueName, log, image);
    // BullMQ's maxStalledCount is 1: the third worker fails the job without building it.
    startWorker({ lockDuration: 2_000, stalledInterval: 1_000 });

    expect(await follower).toEqual([
      WAITING_EVENT,
      { phase: 'fetching', message: `Build started in process ${first}\n` },
      RESTART_EVENT,
      { phase: 'fetching', message: `Build started in process ${second}\n` },
      {
        phase: 'failed',
        message:
          'The build was interrupted too often by its worker stopping (job stalled more than allowable limit), so it was not tried again.\n',
      },
    ]);
    await waitFor(async () => (await queue.status(image)) === 'failed');
    expect(parentCalls).toBe(0);
  }, 40_000);

  test('a follower stops when its signal aborts, though the build has not ended', async () => {
    const { queue } = setUp(() => sleep(60_000), { workers: 0 });
    const image = newImageName();
    await queue.enqueue(jobFor(image));
    const stop = new AbortController();
    const following = queue.follow(image, stop.signal);
    // Read what there is, then abort while the follower waits for more.
    expect((await following.next()).value).toEqual(WAITING_EVENT);
    const rest = collect({ [Symbol.asyncIterator]: () => following });
    stop.abort();
    expect(await rest).toEqual([]);
    expect(await queue.status(image)).toBe('building');
  });
});

describe('build log', () => {
  test('is capped, expires, and reads back whole once finished', async () => {
    const redis = new Redis(REDIS_URL);
    cleanups.push(async () => redis.quit());
    const log = new BuildLog(redis, { maxEntries: 50, ttlSeconds: 60 });
    const image = newImageName();
    const key = buildLogKey(image);
    cleanups.push(() => redis.del(key));

    for (let line = 1; line <= 200; line++) {
      await log.append(image, { phase: 'building', message: `line ${line}\n` });
      expect(await redis.xlen(key)).toBeLessThanOrEqual(50);
    }
    await log.append(image, built(image));
    expect(await redis.xlen(key)).toBe(50);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);

    const stored = await log.read(image);
    expect(stored).toHaveLength(50);
    expect(stored[0]).toEqual({ phase: 'building', message: 'line 152\n' });
    expect(stored.at(-1)).toEqual(built(image));
    expect(await collect(log.follow(image))).toEqual(stored);

    await log.clear(image);
    expect(await log.read(image)).toEqual([]);
  });
});

describe('build queue with the real builder', () => {
  const prefix = `bindery-test/q${run}-real-`;
  const engine = new DockerEngine();
  const builder = new Builder({ engine, config: loadConfig({ BINDERY_IMAGE_PREFIX: prefix }) });
  let imageName: string | undefined;

  afterAll(async () => {
    if (imageName) await engine.removeImage(imageName);
  }, 60_000);

  test('builds test/fixtures/repos/default through the queue, then finds it built', async () => {
    const { queue, log } = setUp((job, onEvent, signal) =>
      builder.buildResolved(
        { spec: job.spec, ref: job.ref, imageName: job.imageName },
        { onEvent, signal },
      ),
    );
    const resolved = await builder.resolve(parseSource(join(ROOT, 'test/fixtures/repos/default')));
    imageName = resolved.imageName;
    const job = { imageName, ref: resolved.ref, spec: resolved.spec };

    await queue.enqueue(job);
    const events = await collect(queue.follow(imageName));
    expect(events[0]).toEqual(WAITING_EVENT);
    expect(events[1]?.phase).toBe('fetching');
    expect(events.filter((event) => event.phase === 'building').length).toBeGreaterThan(1);
    expect(events.at(-1)).toEqual(ended(built(imageName)));
    expect(events.filter((event) => event.phase === 'built')).toHaveLength(1);
    expect(await engine.imageExists(imageName)).toBe(true);

    await waitFor(async () => (await queue.status(imageName!)) === undefined);
    expect(await log.read(imageName)).toEqual(events);

    await queue.enqueue(job);
    expect(await collect(queue.follow(imageName))).toEqual([
      WAITING_EVENT,
      ended({ phase: 'built', message: 'Found built image, launching...\n', imageName }),
    ]);
  }, 300_000);
});
