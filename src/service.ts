import type { Redis } from 'ioredis';
import { Builder } from './build/builder.js';
import type { Config } from './config.js';
import { createLog, type Logger } from './log/create-log.js';
import type { DockerEngine } from './engine/docker-engine.js';
import { createEngine } from './engine/create-engine.js';
import { createGitHubApp, type GitHubApp } from './github/github-app.js';
import { GITHUB_QUEUE } from './github/github-jobs.js';
import { GitHubQueue } from './github/github-queue.js';
import { createGitHubClient } from './repos/github-client.js';
import { githubApiUrl } from './repos/github-refs.js';
import { BUILD_QUEUE } from './queue/build-job.js';
import { BuildLog } from './queue/build-log.js';
import { BuildQueue } from './queue/build-queue.js';
import { RedisRouteTable } from './proxy/redis-route-table.js';
import { connectRedis } from './redis-connection.js';
import { prepareSandbox, type PreparedSandbox } from './sandbox/prepare-sandbox.js';
import { ImageLaunches } from './sessions/image-launches.js';
import { ImagePruner } from './sessions/image-pruner.js';
import { SessionStore } from './sessions/session-store.js';
import { startBuildWorker } from '../workers/build-worker.js';
import { startCuller } from '../workers/culler.js';
import { startGitHubWorker } from '../workers/github-worker.js';
import type { Role } from '../workers/roles.js';
import { startWeb } from '../workers/web.js';

export type { Role } from '../workers/roles.js';

export interface ServiceOptions {
  config: Config;
  /** The roles this process runs, started in this order and stopped in the reverse. */
  roles: readonly Role[];
  /** Prefix of every Redis key, the queue name's suffix and the sessions' `bindery.store` label. */
  namespace?: string;
  /** Host to listen on; the port is config.port (0 picks a free one). */
  host?: string;
  version?: string;
  /** Milliseconds between culls. @defaultValue 60000 */
  cullIntervalMs?: number;
  /** BullMQ stall detection, shorter in tests. */
  worker?: { lockDuration?: number; stalledInterval?: number };
  /** The one logger of the process; each part writes to a child of it. @defaultValue createLog(config.log) */
  log?: Logger;
}

/**
 * What the roles share, made once per process from the configuration: the Redis connection of
 * producers and web requests, Docker, the sandbox, the queues and the session records.
 */
export interface ServiceParts {
  config: Config;
  namespace: string;
  log: Logger;
  redis: Redis;
  engine: DockerEngine;
  sandbox: PreparedSandbox;
  builder: Builder;
  builds: BuildQueue;
  /** The build queue's name: BUILD_QUEUE, suffixed with the namespace when it is not the default. */
  queueName: string;
  githubQueueName: string;
  /** The GitHub App and its queue, when APP_ID and friends are set. */
  github?: { app: GitHubApp; queue: GitHubQueue; webhookSecret: string };
  store: SessionStore;
  routes: RedisRouteTable;
  pruner: ImagePruner;
}

/** One running role; `url` is where the web role listens. */
export interface RunningRole {
  url?: string;
  close(): Promise<unknown>;
}

export interface RunningService {
  /** Where the web role listens, e.g. http://127.0.0.1:8585. */
  url?: string;
  close(): Promise<void>;
}

const STARTERS: Record<
  Role,
  (parts: ServiceParts, options: ServiceOptions) => Promise<RunningRole>
> = { web: startWeb, build: startBuildWorker, github: startGitHubWorker, culler: startCuller };

/**
 * Makes Bindery's shared parts from the configuration and starts the roles asked for (each in
 * workers/). The only place that wires parts together; a new role is one entry in STARTERS.
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { config } = options;
  const namespace = options.namespace ?? 'bindery';
  const log = options.log ?? createLog(config.log);
  const suffix = namespace === 'bindery' ? '' : `-${namespace}`;

  // Producers and web requests fail fast when Redis is away; workers' connections wait.
  const redis = await connectRedis(config.redisUrl, log);
  const closers: (() => Promise<unknown>)[] = [() => redis.quit()];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => {});
  };
  try {
    const engine = createEngine(config);
    await engine.ping();
    const sandbox = await prepareSandbox({ engine, config, log });
    const queueName = `${BUILD_QUEUE}${suffix}`;
    const builds = new BuildQueue({
      connection: redis,
      log: new BuildLog(redis),
      queueName,
      onError: (error) => log.error({ component: 'queue' }, `build queue: ${error.message}`),
    });
    closers.push(() => builds.close());
    const pruner = new ImagePruner(
      { engine, launches: new ImageLaunches(redis, namespace), config },
      log,
    );
    closers.push(() => pruner.close());
    const githubQueueName = `${GITHUB_QUEUE}${suffix}`;
    let github: ServiceParts['github'];
    if (config.githubApp) {
      const app = createGitHubApp({
        app: config.githubApp,
        githubUrl: config.githubUrl,
        redis,
        namespace,
        log,
      });
      const queue = new GitHubQueue({
        connection: redis,
        queueName: githubQueueName,
        onError: (error) => log.error({ component: 'queue' }, `GitHub queue: ${error.message}`),
      });
      github = { app, queue, webhookSecret: config.githubApp.webhookSecret };
      closers.push(
        () => app.close(),
        () => queue.close(),
      );
    }

    // gh refs resolve through Octokit with retry and throttling, counted in the GitHub App's
    // limits (shared through Redis) when the app is on.
    const githubApi = await createGitHubClient({
      apiUrl: githubApiUrl(config.githubUrl),
      token: config.githubToken,
      throttle: github?.app.throttle,
      log: log.child({ component: 'github-api' }),
    });
    const parts: ServiceParts = {
      config,
      namespace,
      log,
      redis,
      engine,
      sandbox,
      // Builds run untrusted code too (postBuild, root in a Dockerfile): each on a network of its
      // own behind the sandbox's rules unless BINDERY_BUILD_NETWORK says otherwise, never on the
      // sessions' bridge.
      builder: new Builder({
        engine,
        config,
        github: githubApi,
        buildNetwork: () => sandbox.build.acquire(),
      }),
      builds,
      queueName,
      githubQueueName,
      github,
      store: new SessionStore(redis, namespace),
      routes: new RedisRouteTable(redis, { prefix: namespace }),
      pruner,
    };
    let url: string | undefined;
    for (const role of new Set(options.roles)) {
      const running = await STARTERS[role](parts, options);
      closers.push(() => running.close());
      url ??= running.url;
    }
    return { url, close };
  } catch (error) {
    await close();
    throw error;
  }
}
