import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { BuildEvent } from '../src/build-event.js';
import { BinderyError, BuildError, UnavailableError } from '../src/errors.js';
import { formatDuration } from '../src/format-duration.js';
import { defaultLog } from '../src/log/create-log.js';
import { BUILD_QUEUE, buildJobSchema, type BuildJob } from '../src/queue/build-job.js';
import { BuildLog } from '../src/queue/build-log.js';
import type { RunningRole, ServiceOptions, ServiceParts } from '../src/service.js';

/**
 * Builds the image of one job, reporting as it goes; resolves when the image exists. The role
 * below passes one that calls Builder.buildResolved; tests pass stand-ins.
 * It should stop when `signal` aborts (the build time limit, or a cancel).
 */
export type BuildFunction = (
  job: BuildJob,
  onEvent: (event: BuildEvent) => void,
  signal: AbortSignal,
) => Promise<unknown>;

export interface BuildWorkerOptions {
  /** Redis for the worker; BullMQ requires `maxRetriesPerRequest: null` on it. */
  connection: Redis;
  log: BuildLog;
  build: BuildFunction;
  /** Builds this worker runs at once (BINDERY_BUILD_CONCURRENCY). */
  concurrency: number;
  /** @defaultValue BUILD_QUEUE */
  queueName?: string;
  /**
   * Names this worker in each build's log, whose first line it takes is then
   * `Building on <workerName>`. @defaultValue none: no such line
   */
  workerName?: string;
  /** Milliseconds a job's lock lasts unless renewed; after a worker dies, its builds wait this long. @defaultValue 30000 */
  lockDuration?: number;
  /** Milliseconds between looks for builds whose worker died. @defaultValue 30000 */
  stalledInterval?: number;
  /** Milliseconds a whole job may take (fetch and build) before it fails for good. @defaultValue 3600000 */
  timeoutMs?: number;
  /** Where worker errors go. @defaultValue defaultLog(), at error */
  onError?: (error: Error) => void;
}

/** What a finished job returns to BullMQ. */
export interface BuildOutcome {
  imageName: string;
}

const line = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);
/** A promise that rejects with `signal`'s reason once it aborts. */
const whenAborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

/**
 * The build worker: runs queued builds `concurrency` at a time and writes each one's events to
 * its log, ending with the final `built` or `failed` (the worker alone writes those). Failures
 * caused by the repository (a BinderyError that is not retryable) are not retried; others are,
 * with the queue's backoff, and only the last try writes `failed`. A job whose worker died is
 * picked up again by BullMQ's stalled-job check, and says so in its log.
 */
export function createBuildWorker({
  connection,
  log,
  build,
  concurrency,
  queueName = BUILD_QUEUE,
  workerName,
  lockDuration = 30_000,
  stalledInterval = 30_000,
  timeoutMs = 3_600_000,
  onError = (error) => defaultLog().error({ component: 'build-worker' }, error.message),
}: BuildWorkerOptions): Worker<BuildJob, BuildOutcome> {
  /** Jobs our processor ran; a failed job outside it was failed by BullMQ itself. */
  const processed = new WeakSet<Job>();

  const processor = async (job: Job<BuildJob>, _token?: string, cancel?: AbortSignal) => {
    processed.add(job);
    const parsed = buildJobSchema.safeParse(job.data);
    if (!parsed.success) {
      throw new UnrecoverableError(`Job ${job.id} is not a build job: ${parsed.error.message}`);
    }
    const data = parsed.data;
    const { imageName } = data;
    // When this try began (BullMQ's processedOn, set as the job became active): the final
    // event carries the time since, so no reader needs the job's end, which BullMQ records
    // only after this function returns.
    const startedAt = job.processedOn ?? Date.now();
    const took = () => ({ durationMs: Math.max(0, Date.now() - startedAt) });

    // BullMQ counts stalls on the job; the count already reported is kept as its progress.
    const reported = (job.progress as { stalls?: number } | undefined)?.stalls ?? 0;
    if (job.stalledCounter > reported) {
      await log.append(imageName, {
        phase: 'waiting',
        message: 'The worker building this image stopped; the build starts again.\n',
      });
      await job.updateProgress({ stalls: job.stalledCounter });
    }

    // With workers on many hosts, the log says which one took this try; `waiting` still, so
    // that clients counting `fetching` events count fetches.
    if (workerName) {
      await log.append(imageName, { phase: 'waiting', message: `Building on ${workerName}\n` });
    }

    const limit = new AbortController();
    const timer = setTimeout(
      () =>
        limit.abort(
          new BuildError(
            `The build took longer than ${formatDuration(timeoutMs)}, this service's limit, and was stopped.`,
          ),
        ),
      timeoutMs,
    );
    const onCancel = () =>
      limit.abort(
        new UnavailableError(`The build was cancelled on its worker (${cancel?.reason}).`),
      );
    cancel?.addEventListener('abort', onCancel, { once: true });

    // Appends keep the order of events; after the end, a late event of the build is dropped.
    let written: Promise<void> = Promise.resolve();
    let ended = false;
    let builtEvent: BuildEvent | undefined;
    const onEvent = (event: BuildEvent) => {
      if (ended) return;
      // The build's own `built` becomes the final event; `failed` comes from the error thrown.
      if (event.phase === 'built') builtEvent = event;
      else if (event.phase !== 'failed') written = written.then(() => log.append(imageName, event));
    };

    try {
      await Promise.race([build(data, onEvent, limit.signal), whenAborted(limit.signal)]);
      ended = true;
      await written;
      await log.append(imageName, {
        phase: 'built',
        message: builtEvent?.message ?? `Built image ${imageName}\n`,
        imageName,
        ...took(),
      });
      return { imageName };
    } catch (thrown) {
      ended = true;
      await written.catch(() => undefined);
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      const retryable = !(error instanceof BinderyError) || error.retryable;
      const attempts = job.opts.attempts ?? 1;
      if (retryable && job.attemptsMade + 1 < attempts) {
        await log.append(imageName, {
          phase: 'waiting',
          message: line(
            `${error.message} The build starts again (attempt ${job.attemptsMade + 2} of ${attempts}).`,
          ),
        });
        throw error;
      }
      await log.append(imageName, { phase: 'failed', message: line(error.message), ...took() });
      throw retryable ? error : new UnrecoverableError(error.message);
    } finally {
      clearTimeout(timer);
      cancel?.removeEventListener('abort', onCancel);
    }
  };

  const worker = new Worker<BuildJob, BuildOutcome>(queueName, processor, {
    connection,
    concurrency,
    lockDuration,
    stalledInterval,
  });
  worker.on('error', onError);
  // BullMQ fails a job without running the processor when it stalled more often than
  // maxStalledCount allows; its followers still need an end.
  worker.on('failed', (job, error) => {
    if (!job || processed.has(job) || typeof job.data?.imageName !== 'string') return;
    log
      .append(job.data.imageName, {
        phase: 'failed',
        message: `The build was interrupted too often by its worker stopping (${error.message}), so it was not tried again.\n`,
      })
      .catch(onError);
  });
  return worker;
}

/**
 * The build worker role: builds queued images with Docker, `BINDERY_BUILD_CONCURRENCY` at a
 * time, after making room under the image budget.
 */
export async function startBuildWorker(
  parts: ServiceParts,
  options: Pick<ServiceOptions, 'worker'>,
): Promise<RunningRole> {
  const { config, builder, pruner } = parts;
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const worker = createBuildWorker({
    connection,
    // The worker's log writes wait out a short Redis outage instead of failing the build.
    log: new BuildLog(connection),
    queueName: parts.queueName,
    concurrency: config.build.concurrency,
    workerName: `${hostname()} (worker ${process.pid})`,
    lockDuration: config.build.stallTimeoutMs,
    stalledInterval: config.build.stallTimeoutMs,
    onError: (error) => parts.log.error({ component: 'build-worker' }, error.message),
    // The job covers the clone too; the builder's own limits fire first with their words.
    timeoutMs: config.git.cloneTimeoutMs + config.build.timeoutMs,
    ...options.worker,
    build: async (job, onEvent, signal) => {
      // A build refused for want of disk fails alone; one that fills the disk fails in its step.
      await pruner.ensureRoom();
      try {
        return await builder.buildResolved(
          { spec: job.spec, ref: job.ref, imageName: job.imageName },
          { onEvent, signal, gitToken: await installationToken(parts, job.installationId) },
        );
      } finally {
        // The new image, or a failed build's layers (`…:failed-<ref>`), may put the others
        // over the budget; the launch need not wait.
        void pruner.run();
      }
    },
  });
  // One line per build in the service's log; what the build printed is in its own build log.
  const log = parts.log.child({ component: 'build-worker' });
  worker.on('completed', (job) => {
    const ms = job.processedOn ? Date.now() - job.processedOn : undefined;
    log.info({ image: job.data.imageName, ms }, `built ${job.data.imageName}`);
  });
  worker.on('failed', (job, error) => {
    if (!job) return;
    // A repository that does not build is routine; anything else may be the service's.
    const level = error instanceof UnrecoverableError ? 'info' : 'warn';
    log[level](
      { image: job.data.imageName, attempts: job.attemptsMade },
      `build failed: ${error.message.split('\n')[0]}`,
    );
  });
  return {
    async close() {
      await worker.close();
      await connection.quit();
    },
  };
}

/** A private repository's build fetches it with a token of the installation that asked. */
async function installationToken(
  { github }: Pick<ServiceParts, 'github'>,
  installationId: number | undefined,
): Promise<string | undefined> {
  if (installationId === undefined) return undefined;
  if (!github) {
    throw new UnavailableError(
      'This build is of a private repository and needs the GitHub App to fetch it; this worker runs without APP_ID.',
    );
  }
  return github.app.installationToken(installationId);
}
