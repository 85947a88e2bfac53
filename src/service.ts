import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { Builder } from './build/builder.js';
import type { Config } from './config.js';
import { DockerEngine } from './engine/docker-engine.js';
import { UnavailableError } from './errors.js';
import { createGitHubApp, type GitHubApp } from './github/github-app.js';
import { GITHUB_QUEUE } from './github/github-jobs.js';
import { GitHubQueue } from './github/github-queue.js';
import { createGitHubWorker } from './github/github-worker.js';
import { createWebhookHandlers } from './github/webhook-handlers.js';
import { createWebhookMiddleware } from './github/webhook-middleware.js';
import { RedisRouteTable } from './proxy/redis-route-table.js';
import { createReverseProxy } from './proxy/reverse-proxy.js';
import { BUILD_QUEUE } from './queue/build-job.js';
import { BuildLog } from './queue/build-log.js';
import { BuildQueue } from './queue/build-queue.js';
import { createBuildWorker } from './queue/build-worker.js';
import { cullSessions } from './sessions/cull-sessions.js';
import { ImageLaunches } from './sessions/image-launches.js';
import { ImagePruner } from './sessions/image-pruner.js';
import { prepareSandbox } from './sandbox/prepare-sandbox.js';
import { reconcileSessions } from './sessions/reconcile-sessions.js';
import { SessionStore } from './sessions/session-store.js';
import { createApp, createHttpHandler } from './web/create-app.js';

export interface ServiceOptions {
  config: Config;
  /** What this process runs: `bindery serve` runs all three, `bindery worker` only the worker. */
  roles: { web?: boolean; worker?: boolean; culler?: boolean };
  /** Prefix of every Redis key, the queue name's suffix and the sessions' `bindery.store` label. */
  namespace?: string;
  /** Host to listen on; the port is config.port (0 picks a free one). */
  host?: string;
  version?: string;
  /** Milliseconds between culls. @defaultValue 60000 */
  cullIntervalMs?: number;
  /** BullMQ stall detection, shorter in tests. */
  worker?: { lockDuration?: number; stalledInterval?: number };
  log?: (line: string) => void;
}

export interface RunningService {
  /** Where the web role listens, e.g. http://127.0.0.1:8585. */
  url?: string;
  close(): Promise<void>;
}

/**
 * Builds Bindery's parts from the configuration and starts the roles asked for: the web app
 * with the proxy, the build worker, the culler. The only place that wires them together.
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { roles } = options;
  const namespace = options.namespace ?? 'bindery';
  const log = options.log ?? ((line: string) => console.error(line));
  const queueName = namespace === 'bindery' ? BUILD_QUEUE : `${BUILD_QUEUE}-${namespace}`;
  const githubQueueName = namespace === 'bindery' ? GITHUB_QUEUE : `${GITHUB_QUEUE}-${namespace}`;

  // Producers and web requests fail fast when Redis is away; the worker's connection waits.
  const redis = new Redis(options.config.redisUrl, { maxRetriesPerRequest: 1 });
  const closers: (() => Promise<unknown>)[] = [() => redis.quit()];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => {});
  };
  try {
    await redis.ping();
    const engine = new DockerEngine(options.config.dockerHost);
    await engine.ping();
    const sandbox = await prepareSandbox({ engine, config: options.config, log });
    const { config } = options;
    // Builds run untrusted code too (postBuild, root in a Dockerfile): each on a network of its
    // own behind the sandbox's rules unless BINDERY_BUILD_NETWORK says otherwise, never on the
    // sessions' bridge.
    const builder = new Builder({ engine, config, buildNetwork: () => sandbox.build.acquire() });
    const buildLog = new BuildLog(redis);
    const builds = new BuildQueue({ connection: redis, log: buildLog, queueName });
    closers.push(() => builds.close());
    let github: { app: GitHubApp; queue: GitHubQueue; webhookSecret: string } | undefined;
    if (config.githubApp) {
      const app = createGitHubApp({
        app: config.githubApp,
        githubUrl: config.githubUrl,
        redis,
        namespace,
        log,
      });
      const queue = new GitHubQueue({ connection: redis, queueName: githubQueueName });
      github = { app, queue, webhookSecret: config.githubApp.webhookSecret };
      closers.push(
        () => app.close(),
        () => queue.close(),
      );
      log(`GitHub App ${config.githubApp.appId} on: webhooks at /api/github/webhooks`);
    } else {
      log(
        'GitHub App off: set APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET to turn it on',
      );
    }
    /** A private repository's build fetches it with a token of the installation that asked. */
    const installationToken = async (installationId: number | undefined) => {
      if (installationId === undefined) return undefined;
      if (!github) {
        throw new UnavailableError(
          'This build is of a private repository and needs the GitHub App to fetch it; this worker runs without APP_ID.',
        );
      }
      return github.app.installationToken(installationId);
    };
    const store = new SessionStore(redis, namespace);
    const routes = new RedisRouteTable(redis, { prefix: namespace });
    const launches = new ImageLaunches(redis, namespace);
    const pruner = new ImagePruner({ engine, launches, config }, log);
    closers.push(() => pruner.close());

    if (roles.worker) {
      const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
      const worker = createBuildWorker({
        connection,
        // The worker's log writes wait out a short Redis outage instead of failing the build.
        log: new BuildLog(connection),
        queueName,
        concurrency: config.build.concurrency,
        // The job covers the clone too; the builder's own limits fire first with their words.
        timeoutMs: config.git.cloneTimeoutMs + config.build.timeoutMs,
        ...options.worker,
        build: async (job, onEvent, signal) => {
          // A build refused for want of disk fails alone; one that fills the disk fails in its step.
          await pruner.ensureRoom();
          try {
            return await builder.buildResolved(
              { spec: job.spec, ref: job.ref, imageName: job.imageName },
              { onEvent, signal, gitToken: await installationToken(job.installationId) },
            );
          } finally {
            // The new image, or a failed build's layers (`…:failed-<ref>`), may put the others
            // over the budget; the launch need not wait.
            void pruner.run();
          }
        },
      });
      closers.push(
        () => connection.quit(),
        () => worker.close(),
      );
      if (github) {
        const githubWorker = createGitHubWorker({
          connection,
          app: github.app,
          config,
          builds,
          reports: github.queue,
          redis,
          namespace,
          reportTimeoutMs: config.git.cloneTimeoutMs + config.build.timeoutMs + 600_000,
          queueName: githubQueueName,
          log,
        });
        closers.push(() => githubWorker.close());
      }
    }

    let url: string | undefined;
    if (roles.web) {
      const webhooks =
        github &&
        (await createWebhookMiddleware({
          probot: github.app.probot,
          handlers: createWebhookHandlers({
            addPrebuilds: (delivery, jobs) => github.queue.addPrebuilds(delivery, jobs),
          }),
          webhookSecret: github.webhookSecret,
          log,
        }));
      const { kept, removed } = await reconcileSessions({ engine, store, routes });
      if (kept.length + removed.length > 0) {
        log(`sessions reconciled: ${kept.length} kept, ${removed.length} removed`);
      }
      const app = createApp({
        config,
        engine,
        resolve: (spec) => builder.resolve(spec),
        builds,
        store,
        routes,
        sandbox,
        redis,
        namespace,
        version: options.version ?? '0.1.0',
        webhooks,
      });
      const proxy = createReverseProxy({
        routes,
        sessionHost: config.sessionHost,
        publicUrl: config.publicUrl,
        onActivity: (name, at) => store.touch(name, at),
        log,
      });
      const server: Server = createServer(createHttpHandler(app, proxy));
      server.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, options.host ?? '0.0.0.0', resolve);
      });
      const { port } = server.address() as AddressInfo;
      url = `http://${options.host ?? '127.0.0.1'}:${port}`;
      closers.push(async () => {
        proxy.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      });
    }

    if (roles.culler) {
      let culling: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        culling = cullSessions({ engine, store, routes, config })
          .then((culled) => culled.length > 0 && log(`culled sessions: ${culled.join(', ')}`))
          .catch((error: Error) => log(`culling failed: ${error.message}`))
          // Culled sessions leave their images unused: they may go now if over the budget.
          .then(() => pruner.run());
      }, options.cullIntervalMs ?? 60_000);
      // A cull under way finishes before the connections it uses close.
      closers.push(async () => {
        clearInterval(timer);
        await culling;
      });
    }
    return { url, close };
  } catch (error) {
    await close();
    throw error;
  }
}
