import { Queue, type JobState } from 'bullmq';
import type { Redis } from 'ioredis';
import { defaultLog } from '../log/create-log.js';
import { BUILD_QUEUE, buildJobSchema, jobIdFor, type BuildJob } from './build-job.js';
import type { BuildEvent } from '../build-event.js';
import type { BuildLog, BuildLogEntry } from './build-log.js';
import { withRedisLock } from './with-redis-lock.js';

export interface BuildQueueOptions {
  /**
   * Redis for the queue and its enqueue lock. A producer fails fast: give it a connection that
   * keeps ioredis' `maxRetriesPerRequest` (not `null`), so a request fails when Redis is away.
   */
  connection: Redis;
  log: BuildLog;
  /** @defaultValue BUILD_QUEUE */
  queueName?: string;
  /** Tries of a build whose failure may pass (Docker or a git host away); 1 is no retry. @defaultValue 3 */
  attempts?: number;
  /** Milliseconds before the first retry; each next retry waits twice as long. @defaultValue 10000 */
  backoffMs?: number;
  /** Seconds a finished job is kept for `status`, like the log. @defaultValue 604800 (7 days) */
  keepFinishedSeconds?: number;
  /** Where connection errors go. @defaultValue defaultLog(), at error */
  onError?: (error: Error) => void;
}

/** BinderHub's first event of a build. */
export const WAITING_EVENT: BuildEvent = {
  phase: 'waiting',
  message: 'Waiting for build to start...\n',
};

/** States of a job that is still going to build (a retry waits as `delayed`). */
const UNFINISHED: ReadonlySet<JobState | 'unknown'> = new Set([
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
]);

/**
 * The producer side of the build queue. A build's job id is its image name, so every request
 * for one commit attaches to one build, however many web requests or webhooks ask.
 */
export class BuildQueue {
  private readonly queue: Queue<BuildJob>;
  private readonly redis: Redis;
  private readonly log: BuildLog;

  constructor({
    connection,
    log,
    queueName = BUILD_QUEUE,
    attempts = 3,
    backoffMs = 10_000,
    keepFinishedSeconds = 7 * 24 * 3600,
    onError = (error) =>
      defaultLog().error({ component: 'queue' }, `build queue: ${error.message}`),
  }: BuildQueueOptions) {
    this.redis = connection;
    this.log = log;
    this.queue = new Queue<BuildJob>(queueName, {
      connection,
      defaultJobOptions: {
        attempts,
        backoff: { type: 'exponential', delay: backoffMs },
        removeOnComplete: { age: keepFinishedSeconds },
        removeOnFail: { age: keepFinishedSeconds },
      },
    });
    this.queue.on('error', onError);
  }

  /**
   * Queues a build of `job.imageName`, or attaches to the one waiting or running for it
   * (`attached: true`). A finished job of the same image (it failed, or its image has since
   * been removed) is replaced, and its log cleared first so followers never read its end.
   */
  async enqueue(job: BuildJob): Promise<{ attached: boolean }> {
    const data = buildJobSchema.parse(job);
    const jobId = jobIdFor(data.imageName);
    // Two requests that both find a finished job must not both replace it: the second would
    // clear the log of the build the first has just queued.
    return withRedisLock(this.redis, `bindery:enqueue:${this.queue.name}:${jobId}`, async () => {
      const state = await this.queue.getJobState(jobId);
      if (UNFINISHED.has(state)) return { attached: true };
      // Also when 'unknown': a job hash left outside every list would make `add` a no-op.
      await this.queue.remove(jobId);
      await this.log.clear(data.imageName);
      // Before the job exists, so that `waiting` comes before anything a worker writes.
      await this.log.append(data.imageName, WAITING_EVENT);
      try {
        await this.queue.add('build', data, { jobId });
      } catch (error) {
        // No worker will end this log; a follower would wait for nothing.
        await this.log.clear(data.imageName).catch(() => undefined);
        throw error;
      }
      return { attached: false };
    });
  }

  /** `imageName`'s build log from the start, then live, to its final event (BuildLog.follow). */
  follow(imageName: string, signal?: AbortSignal): AsyncGenerator<BuildEvent> {
    return this.log.follow(imageName, signal);
  }

  /** `imageName`'s build log after the entry `from`, each event with its id (BuildLog.followFrom). */
  followFrom(imageName: string, from: string, signal?: AbortSignal): AsyncGenerator<BuildLogEntry> {
    return this.log.followFrom(imageName, from, signal);
  }

  /** `imageName`'s whole stored build log with entry ids, oldest first. */
  entries(imageName: string): Promise<BuildLogEntry[]> {
    return this.log.entries(imageName);
  }

  /** `imageName`'s whole stored build log, oldest first; empty when there is none. */
  read(imageName: string): Promise<BuildEvent[]> {
    return this.log.read(imageName);
  }

  /** The newest event of `imageName`'s build log (BuildLog.last). */
  lastEvent(imageName: string): Promise<BuildEvent | undefined> {
    return this.log.last(imageName);
  }

  /** `building` while the image's newest build waits or runs, `failed` when it failed. */
  async status(imageName: string): Promise<'building' | 'failed' | undefined> {
    const state = await this.queue.getJobState(jobIdFor(imageName));
    if (UNFINISHED.has(state)) return 'building';
    return state === 'failed' ? 'failed' : undefined;
  }

  /**
   * What the queue knows of the image's newest build: whether it is private (built with an
   * installation's credentials) and when its final try started and ended (epoch milliseconds).
   */
  async details(imageName: string): Promise<
    | {
        private: boolean;
        startedAt?: number;
        finishedAt?: number;
        spec: BuildJob['spec'];
        ref: string;
      }
    | undefined
  > {
    const job = await this.queue.getJob(jobIdFor(imageName));
    if (!job) return undefined;
    return {
      private: job.data.installationId !== undefined,
      spec: job.data.spec,
      ref: job.data.ref,
      startedAt: job.processedOn,
      finishedAt: job.finishedOn,
    };
  }

  /** Closes the queue; the connection stays open for its owner to close. */
  async close(): Promise<void> {
    await this.queue.close();
  }
}
