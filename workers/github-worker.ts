import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { z } from 'zod';
import type { Config } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import type { GitHubApp } from '../src/github/github-app.js';
import { defaultLog, type Logger } from '../src/log/create-log.js';
import {
  GITHUB_QUEUE,
  prebuildJobSchema,
  reportJobSchema,
  reportQueueFor,
} from '../src/github/github-jobs.js';
import { permanentGitHubError } from '../src/github/permanent-github-error.js';
import { prebuild, type PrebuildDeps } from '../src/github/prebuild.js';
import { reportBuild, type ReportDeps } from '../src/github/report-build.js';
import type { RunningRole, ServiceParts } from '../src/service.js';

export interface GitHubWorkerOptions {
  /** Redis for the worker; BullMQ requires `maxRetriesPerRequest: null` on it. */
  connection: Redis;
  app: GitHubApp;
  config: Pick<Config, 'publicUrl' | 'githubUrl' | 'imagePrefix'>;
  /** The build queue: enqueue for prebuilds, follow for reports. */
  builds: PrebuildDeps['builds'] & ReportDeps['builds'];
  reports: PrebuildDeps['reports'];
  /** Redis for locks and waiting pull requests (a producer's connection). */
  redis: Redis;
  /** Prefix of those keys, the service's namespace. @defaultValue bindery */
  namespace?: string;
  /** Longest a report waits for its build, in milliseconds: the clone and build limits together. */
  reportTimeoutMs: number;
  /** Prebuilds at once; they call GitHub, which spaces an installation's writes. @defaultValue 5 */
  concurrency?: number;
  /** Reports at once; each waits on its build with a Redis connection of its own. @defaultValue 50 */
  reportConcurrency?: number;
  /** @defaultValue GITHUB_QUEUE */
  queueName?: string;
  /**
   * How long closing waits for jobs under way before it gives them up: a job calling a GitHub
   * that does not answer retries for minutes. A job given up fails, and is tried again later
   * (by this or another process) with the queue's backoff. @defaultValue 10000
   */
  closeGraceMs?: number;
  /** The service's logger; jobs are logged to its `github-worker` child. @defaultValue defaultLog() */
  log?: Logger;
}

/**
 * The GitHub App's worker: runs prebuild requests (from webhooks) and build reports, calling
 * GitHub's API as the installation. A job that fails because GitHub is away (5xx, network, rate
 * limits) is tried again with the queue's backoff; one whose data is not valid, or that GitHub
 * refused with a 4xx it would give again, is not.
 */
export function createGitHubWorker(options: GitHubWorkerOptions): { close(): Promise<void> } {
  const { app } = options;
  const log = (options.log ?? defaultLog()).child({ component: 'github-worker' });
  const parse = <T>(schema: z.ZodType<T>, job: Job): T => {
    const parsed = schema.safeParse(job.data);
    if (parsed.success) return parsed.data;
    throw new UnrecoverableError(`Job ${job.id} is not a ${job.name} job: ${parsed.error.message}`);
  };
  const processor = async (job: Job, _token?: string, signal?: AbortSignal): Promise<string> => {
    try {
      return await untilAborted(run(job), signal);
    } catch (error) {
      // GitHub's refusals (422, 404 of a deleted repository, 401/403) fail the same each time.
      throw permanentGitHubError(error) ?? error;
    }
  };
  const run = async (job: Job): Promise<string> => {
    const botLogin = () => app.botLogin();
    let outcome: string;
    if (job.name === 'report') {
      const data = parse(reportJobSchema, job);
      outcome = await reportBuild(data, {
        ...options,
        octokit: await app.installation(data.installationId),
        botLogin,
        signal: AbortSignal.timeout(options.reportTimeoutMs),
      });
    } else {
      const data = parse(prebuildJobSchema, job);
      outcome = await prebuild(data, {
        ...options,
        octokit: await app.installation(data.installationId),
        appId: app.appId,
        botLogin,
      });
    }
    log.info({ job: job.id }, `${job.name}: ${outcome}`);
    return outcome;
  };
  const queueName = options.queueName ?? GITHUB_QUEUE;
  const workers = [
    new Worker(queueName, processor, {
      connection: options.connection,
      concurrency: options.concurrency ?? 5,
    }),
    new Worker(reportQueueFor(queueName), processor, {
      connection: options.connection,
      concurrency: options.reportConcurrency ?? 50,
    }),
  ];
  for (const worker of workers) {
    worker.on('error', (error) => log.error(`worker: ${error.message}`));
    worker.on('failed', (job, error) =>
      log.warn(
        { job: job?.id, attempts: job?.attemptsMade },
        `${job?.name ?? 'job'} failed (try ${job?.attemptsMade ?? '?'}): ${error.message}`,
      ),
    );
  }
  return {
    async close() {
      const giveUp = setTimeout(() => {
        for (const worker of workers) worker.cancelAllJobs('Bindery is stopping');
      }, options.closeGraceMs ?? 10_000);
      await Promise.all(workers.map((worker) => worker.close())).finally(() =>
        clearTimeout(giveUp),
      );
    },
  };
}

/**
 * `work`, or a rejection as soon as `signal` aborts. Octokit's retries do not see the signal, so
 * the work itself is left to end on its own; its outcome is dropped.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  work.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new Error(`stopped: ${String(signal.reason)}`));
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/**
 * The GitHub worker role: prebuilds and check-run reports for the GitHub App. It needs the
 * App's credentials; `bindery serve` starts it only when they are set.
 */
export async function startGitHubWorker(parts: ServiceParts): Promise<RunningRole> {
  const { config, github } = parts;
  if (!github) {
    throw new ConfigError(
      'The GitHub worker needs the GitHub App: set APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET.',
    );
  }
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const worker = createGitHubWorker({
    connection,
    app: github.app,
    config,
    builds: parts.builds,
    reports: github.queue,
    redis: parts.redis,
    namespace: parts.namespace,
    reportTimeoutMs: config.git.cloneTimeoutMs + config.build.timeoutMs + 600_000,
    queueName: parts.githubQueueName,
    log: parts.log,
  });
  return {
    async close() {
      await worker.close();
      await connection.quit();
    },
  };
}
