import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sign } from '@octokit/webhooks-methods';
import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import { BuildError } from '../../src/errors.js';
import { createGitHubApp, type GitHubApp } from '../../src/github/github-app.js';
import { GitHubQueue } from '../../src/github/github-queue.js';
import { createGitHubWorker } from '../../workers/github-worker.js';
import { createWebhookHandlers } from '../../src/github/webhook-handlers.js';
import { createWebhookMiddleware } from '../../src/github/webhook-middleware.js';
import type { BuildJob } from '../../src/queue/build-job.js';
import type { BuildEvent } from '../../src/build-event.js';
import { BuildLog, isFinalEvent } from '../../src/queue/build-log.js';
import { BuildQueue } from '../../src/queue/build-queue.js';
import { createBuildWorker } from '../../workers/build-worker.js';
import { waitFor } from './wait-for.js';
import { captureLog } from './capture-log.js';

export const WEBHOOK_SECRET = 'bindery-test-secret';

/** A private key for the app's JWTs; GitHub is fake, but the signing is real. */
export const testPrivateKey = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;

export interface HarnessOptions {
  appId: number;
  githubUrl: string;
  /** The build each job runs; by default a stand-in that logs two lines and succeeds. */
  build?: (
    job: BuildJob,
    onEvent: (event: { phase: 'fetching' | 'building'; message: string }) => void,
  ) => Promise<void>;
  /** First wait before a failed GitHub job is tried again (GitHubQueue's retryDelayMs). */
  retryDelayMs?: number;
}

/**
 * The GitHub App's parts as `bindery serve` wires them, on real Redis and real HTTP: the
 * webhook endpoint, the GitHub queue and worker, the build queue and a build worker whose
 * build is a stand-in (the real builder is proven in the GitHub Enterprise test).
 */
export async function startGitHubHarness(options: HarnessOptions) {
  const namespace = `gh-${randomUUID().slice(0, 8)}`;
  const redis = new Redis({ maxRetriesPerRequest: 1 });
  const connection = new Redis({ maxRetriesPerRequest: null });
  const { log, entries } = captureLog('info');
  const app: GitHubApp = createGitHubApp({
    app: {
      appId: options.appId,
      privateKey: testPrivateKey(),
      webhookSecret: WEBHOOK_SECRET,
    },
    githubUrl: options.githubUrl,
    redis,
    namespace,
    log,
  });
  const buildQueueName = `bindery-builds-${namespace}`;
  const builds = new BuildQueue({
    connection: redis,
    log: new BuildLog(redis),
    queueName: buildQueueName,
    attempts: 1,
  });
  const github = new GitHubQueue({
    connection: redis,
    queueName: `bindery-github-${namespace}`,
    retryDelayMs: options.retryDelayMs,
  });
  const built: BuildJob[] = [];
  /** Commits whose stand-in build fails. */
  const failing = new Set<string>();
  /** Commits whose stand-in build waits, once building, until the test calls `release()`. */
  const held = new Map<string, { release(): void; done: Promise<void> }>();
  const hold = (sha: string) => {
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    held.set(sha, { release, done });
    return () => {
      held.delete(sha);
      release();
    };
  };
  const build =
    options.build ??
    (async (job: BuildJob, onEvent: Parameters<NonNullable<HarnessOptions['build']>>[1]) => {
      onEvent({ phase: 'fetching', message: `Fetching ${job.spec.url} at ${job.ref}...\n` });
      await new Promise((resolve) => setTimeout(resolve, 50));
      onEvent({ phase: 'building', message: 'Step 1/1 : FROM bindery/base:bookworm\n' });
      await held.get(job.ref)?.done;
      if (failing.has(job.ref)) throw new BuildError('postBuild failed with exit code 1.');
    });
  /**
   * The build worker's log, with a door between a build's final event and the worker handing
   * the job back to BullMQ: a test that holds it open sees what reports read while the queue
   * has not yet recorded the job's end (BullMQ writes `finishedOn` after the processor returns).
   */
  const hooks: { afterFinalEvent?: (imageName: string) => Promise<void> } = {};
  class WorkerLog extends BuildLog {
    override async append(imageName: string, event: BuildEvent): Promise<void> {
      await super.append(imageName, event);
      if (isFinalEvent(event)) await hooks.afterFinalEvent?.(imageName);
    }
  }
  const workers: { close(): Promise<unknown> }[] = [
    createBuildWorker({
      connection,
      log: new WorkerLog(connection),
      queueName: buildQueueName,
      concurrency: 4,
      build: async (job, onEvent) => {
        built.push(job);
        await build(job, onEvent);
      },
    }),
    createGitHubWorker({
      connection,
      app,
      config: {
        publicUrl: 'https://bindery.test',
        githubUrl: options.githubUrl,
        imagePrefix: `${namespace}/r2d-`,
      },
      builds,
      reports: github,
      redis,
      namespace,
      reportTimeoutMs: 60_000,
      queueName: `bindery-github-${namespace}`,
      log,
    }),
  ];
  const web = express();
  web.use(
    await createWebhookMiddleware({
      probot: app.probot,
      handlers: createWebhookHandlers({
        addPrebuilds: (delivery, jobs) => github.addPrebuilds(delivery, jobs),
      }),
      webhookSecret: WEBHOOK_SECRET,
      log,
    }),
  );
  const server: Server = createServer(web);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;

  return {
    namespace,
    redis,
    /** The messages logged so far, oldest first. */
    get logs() {
      return entries().map(({ msg }) => msg);
    },
    /** The entries logged so far, with their fields (a job's id is in `job`). */
    get logEntries() {
      return entries();
    },
    built,
    failing,
    /** Holds `sha`'s stand-in build in its building phase; returns the function that lets it end. */
    hold,
    hooks,
    url,
    /** The newest event of `imageName`'s build log: its final event once the build has ended. */
    finalEvent: (imageName: string) => new BuildLog(redis).last(imageName),
    /** Delivers `payload` as GitHub would: signed with the secret unless told otherwise. */
    async deliver(
      event: string,
      payload: unknown,
      {
        delivery = randomUUID(),
        secret = WEBHOOK_SECRET,
      }: { delivery?: string; secret?: string } = {},
    ) {
      const body = JSON.stringify(payload);
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': event,
          'x-github-delivery': delivery,
          'x-hub-signature-256': await sign(secret, body),
        },
        body,
      });
      return { status: response.status, text: await response.text(), delivery };
    },
    /**
     * What the GitHub queue holds for one webhook delivery: its prebuild job's state and tries,
     * or undefined when the delivery queued nothing. (A delivery of several repositories names
     * its jobs `<delivery>-<n>`; pass that.)
     */
    async deliveryJob(jobId: string) {
      const prebuilds = new Queue(`bindery-github-${namespace}`, { connection: redis });
      try {
        const job = await prebuilds.getJob(jobId);
        if (!job) return undefined;
        return {
          state: await job.getState(),
          attemptsMade: job.attemptsMade,
          finishedOn: job.finishedOn,
        };
      } finally {
        await prebuilds.close();
      }
    },
    /**
     * Waits until neither queue has a job waiting, running or waiting to be tried again: the
     * end of a test's work. Webhook deliveries are queued before they are answered, and each
     * job queues the next (prebuild → build and report) before it ends, so once idle, nothing
     * a delivery caused is still to come.
     */
    async idle(timeoutMs = 30_000) {
      const buildCounts = new Queue(buildQueueName, { connection: redis });
      try {
        await waitFor(
          async () => {
            const builds = await buildCounts.getJobCounts(
              'waiting',
              'active',
              'delayed',
              'prioritized',
              'waiting-children',
            );
            const unfinished = Object.values(builds).reduce((sum, count) => sum + count, 0);
            return unfinished + (await github.unfinished()) === 0;
          },
          'both queues to be idle',
          timeoutMs,
        );
      } finally {
        await buildCounts.close();
      }
    },
    /** Forgets which pull requests wait for which commit, between tests. */
    async forgetWaitingPullRequests() {
      const keys = await redis.keys(`${namespace}:github:prs:*`);
      if (keys.length > 0) await redis.del(...keys);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      for (const worker of workers) await worker.close();
      await builds.close();
      await github.close();
      await app.close();
      const keys = [
        ...(await redis.keys(`bull:*${namespace}*`)),
        ...(await redis.keys(`${namespace}:*`)),
      ];
      if (keys.length > 0) await redis.del(...keys);
      await connection.quit();
      await redis.quit();
    },
  };
}

export type GitHubHarness = Awaited<ReturnType<typeof startGitHubHarness>>;
