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
import { createGitHubWorker } from '../../src/github/github-worker.js';
import { createWebhookHandlers } from '../../src/github/webhook-handlers.js';
import { createWebhookMiddleware } from '../../src/github/webhook-middleware.js';
import type { BuildJob } from '../../src/queue/build-job.js';
import { BuildLog } from '../../src/queue/build-log.js';
import { BuildQueue } from '../../src/queue/build-queue.js';
import { createBuildWorker } from '../../src/queue/build-worker.js';
import { waitFor } from './wait-for.js';

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
  const logs: string[] = [];
  const log = (line: string) => logs.push(line);
  const app: GitHubApp = createGitHubApp({
    app: {
      appId: options.appId,
      privateKey: testPrivateKey(),
      webhookSecret: WEBHOOK_SECRET,
      logLevel: 'info',
    },
    githubUrl: options.githubUrl,
    redis,
    log,
  });
  const buildQueueName = `bindery-builds-${namespace}`;
  const builds = new BuildQueue({
    connection: redis,
    log: new BuildLog(redis),
    queueName: buildQueueName,
    attempts: 1,
  });
  const github = new GitHubQueue({ connection: redis, queueName: `bindery-github-${namespace}` });
  const built: BuildJob[] = [];
  /** Commits whose stand-in build fails. */
  const failing = new Set<string>();
  const build =
    options.build ??
    (async (job: BuildJob, onEvent: Parameters<NonNullable<HarnessOptions['build']>>[1]) => {
      onEvent({ phase: 'fetching', message: `Fetching ${job.spec.url} at ${job.ref}...\n` });
      await new Promise((resolve) => setTimeout(resolve, 50));
      onEvent({ phase: 'building', message: 'Step 1/1 : FROM bindery/base:bookworm\n' });
      if (failing.has(job.ref)) throw new BuildError('postBuild failed with exit code 1.');
    });
  const workers: { close(): Promise<unknown> }[] = [
    createBuildWorker({
      connection,
      log: new BuildLog(connection),
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
    logs,
    built,
    failing,
    url,
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
    /** Waits until neither queue has a job waiting or running: the end of a test's work. */
    async idle(timeoutMs = 30_000) {
      const buildCounts = new Queue(buildQueueName, { connection: redis });
      try {
        await waitFor(
          async () => {
            const builds = await buildCounts.getJobCounts('waiting', 'active', 'delayed');
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
      const keys = await redis.keys('bindery:github:prs:*');
      if (keys.length > 0) await redis.del(...keys);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      for (const worker of workers) await worker.close();
      await builds.close();
      await github.close();
      await app.close();
      const keys = await redis.keys(`bull:*${namespace}*`);
      if (keys.length > 0) await redis.del(...keys);
      await connection.quit();
      await redis.quit();
    },
  };
}

export type GitHubHarness = Awaited<ReturnType<typeof startGitHubHarness>>;
