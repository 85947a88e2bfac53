import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  GITHUB_QUEUE,
  prebuildJobSchema,
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
}

/**
 * The producer side of the GitHub App's queue. A webhook's jobs are keyed by its
 * `X-GitHub-Delivery`, so a redelivered webhook adds nothing; a report is keyed by its check
 * run, so one build is reported once however many events ask for it.
 */
export class GitHubQueue {
  private readonly queue: Queue;

  constructor({
    connection,
    queueName = GITHUB_QUEUE,
    rememberSeconds = 7 * 24 * 3600,
  }: GitHubQueueOptions) {
    this.queue = new Queue(queueName, {
      connection,
      defaultJobOptions: {
        // GitHub's API may be away or limiting: wait and try again, 5 times over about 5 min.
        attempts: 5,
        backoff: { type: 'exponential', delay: 10_000 },
        removeOnComplete: { age: rememberSeconds },
        // A delivery that failed did nothing; its redelivery should be tried.
        removeOnFail: true,
      },
    });
    this.queue.on('error', (error) => console.error(`bindery github queue: ${error.message}`));
  }

  /** Queues the prebuilds of one webhook delivery; `delivery` names them, one per repository. */
  async addPrebuilds(delivery: string, jobs: readonly PrebuildJob[]): Promise<void> {
    await this.queue.addBulk(
      jobs.map((job, index) => ({
        name: 'prebuild',
        data: prebuildJobSchema.parse(job),
        opts: { jobId: jobs.length === 1 ? delivery : `${delivery}-${index}` },
      })),
    );
  }

  /** Queues the report of a build unless one for the same check run (or commit) is running. */
  async addReport(job: ReportJob): Promise<void> {
    await this.queue.add('report', reportJobSchema.parse(job), {
      jobId: reportJobId(job),
      // Gone once done: a later prebuild of the same commit without a check run reports again.
      removeOnComplete: true,
    });
  }

  /** How many jobs wait and run, for health and tests. */
  async jobCounts(): Promise<{ waiting: number; active: number; delayed: number }> {
    const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed');
    return {
      waiting: counts.waiting ?? 0,
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
    };
  }

  /** Closes the queue; the connection stays open for its owner to close. */
  async close(): Promise<void> {
    await this.queue.close();
  }
}
