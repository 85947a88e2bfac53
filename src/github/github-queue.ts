import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { defaultLog } from '../log/create-log.js';
import {
  GITHUB_QUEUE,
  prebuildJobSchema,
  reportQueueFor,
  reportJobId,
  reportJobSchema,
  type PrebuildJob,
  type ReportJob,
} from './github-jobs.js';

export interface GitHubQueueOptions {
  /** A producer's connection: keeps `maxRetriesPerRequest`, so a webhook fails fast without Redis. */
  connection: Redis;
  /** @defaultValue GITHUB_QUEUE */
  queueName?: string;
  /**
   * Seconds a handled delivery is remembered, so that its redelivery does nothing. GitHub
   * redelivers up to three days back. @defaultValue 604800 (7 days)
   */
  rememberSeconds?: number;
  /** First wait before a failed job is tried again; each later wait doubles. @defaultValue 10000 */
  retryDelayMs?: number;
  /** Where connection errors go. @defaultValue defaultLog(), at error */
  onError?: (error: Error) => void;
}

/**
 * The producer side of the GitHub App's queue. A webhook's jobs are keyed by its
 * `X-GitHub-Delivery`, so a redelivered webhook adds nothing; a report is keyed by its check
 * run, so one build is reported once however many events ask for it.
 */
export class GitHubQueue {
  private readonly queue: Queue;
  private readonly reports: Queue;

  constructor({
    connection,
    queueName = GITHUB_QUEUE,
    rememberSeconds = 7 * 24 * 3600,
    retryDelayMs = 10_000,
    onError = (error) =>
      defaultLog().error({ component: 'queue' }, `GitHub queue: ${error.message}`),
  }: GitHubQueueOptions) {
    const defaultJobOptions = {
      // GitHub's API may be away or limiting: wait and try again, 5 times over about 5 min.
      attempts: 5,
      backoff: { type: 'exponential', delay: retryDelayMs },
      removeOnComplete: { age: rememberSeconds },
      // A delivery that failed did nothing; its redelivery should be tried.
      removeOnFail: true,
    };
    this.queue = new Queue(queueName, { connection, defaultJobOptions });
    this.reports = new Queue(reportQueueFor(queueName), { connection, defaultJobOptions });
    for (const queue of [this.queue, this.reports]) {
      queue.on('error', onError);
    }
  }

  /** Queues the prebuilds of one webhook delivery; `delivery` names them, one per repository. */
  async addPrebuilds(delivery: string, jobs: readonly PrebuildJob[]): Promise<void> {
    const data = jobs.map((job) => prebuildJobSchema.parse(job));
    // Nearly every delivery is one job; `add` is one script call, `addBulk` a transaction.
    if (data.length === 1) {
      await this.queue.add('prebuild', data[0], { jobId: delivery });
      return;
    }
    await this.queue.addBulk(
      data.map((job, index) => ({
        name: 'prebuild',
        data: job,
        opts: { jobId: `${delivery}-${index}` },
      })),
    );
  }

  /** Queues the report of a build unless one for the same check run (or commit) is running. */
  async addReport(job: ReportJob): Promise<void> {
    await this.reports.add('report', reportJobSchema.parse(job), {
      jobId: reportJobId(job),
      // Gone once done: a later prebuild of the same commit without a check run reports again.
      removeOnComplete: true,
    });
  }

  /** How many prebuilds and reports wait, run, or wait for a retry. */
  async unfinished(): Promise<number> {
    let total = 0;
    for (const queue of [this.queue, this.reports]) {
      const counts = await queue.getJobCounts(
        'waiting',
        'active',
        'delayed',
        'prioritized',
        'waiting-children',
      );
      total += Object.values(counts).reduce((sum, count) => sum + count, 0);
    }
    return total;
  }

  /** Closes the queue; the connection stays open for its owner to close. */
  async close(): Promise<void> {
    await this.queue.close();
    await this.reports.close();
  }
}
