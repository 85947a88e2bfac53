import Bottleneck from 'bottleneck';
import type { Redis } from 'ioredis';
import { Probot, ProbotOctokit } from 'probot';
import type { GitHubAppConfig } from '../config.js';
import type { Logger } from '../log/create-log.js';
import { githubApiUrl } from '../repos/github-refs.js';
import { createProbotLog } from './probot-log.js';

/** An Octokit acting as one installation of the app: Probot's, with throttling, retry and config. */
export type InstallationOctokit = ProbotOctokit;

/** The GitHub App as Bindery uses it: Probot for webhooks, Octokits and tokens for the work. */
export interface GitHubApp {
  readonly probot: Probot;
  readonly appId: number;
  /** An Octokit acting as installation `installationId`. */
  installation(installationId: number): Promise<InstallationOctokit>;
  /** A token of installation `installationId`, for fetching its private repositories. */
  installationToken(installationId: number): Promise<string>;
  /** The app's bot account (`<slug>[bot]`), the author of its comments; asked once. */
  botLogin(): Promise<string>;
  /**
   * The throttling options of the app's clients (`Bottleneck`, the Redis connection, the
   * namespace), for another Octokit of this process to count its requests in the same limits.
   */
  readonly throttle: Record<string, unknown>;
  close(): Promise<void>;
}

export interface GitHubAppOptions {
  app: GitHubAppConfig;
  /** `GHE_PROTOCOL://GHE_HOST`; the REST API lives at its `/api/v3` (or api.github.com). */
  githubUrl: string;
  /** Shares rate limits between processes (Probot's clustering); in-process limits without. */
  redis?: Redis;
  /**
   * Names the shared rate limits in Redis: the service's namespace, so that processes of one
   * service space their writes together and two services on one Redis do not. @defaultValue bindery
   */
  namespace?: string;
  /** The service's logger: Probot's lines and the rate limiter's go to its `github` child. */
  log: Logger;
}

/**
 * Makes the Probot instance from Bindery's configuration: Probot's throttling (writes spaced,
 * rate limits waited out and retried) and retry plugins, clustered through Redis when given.
 */
export function createGitHubApp({
  app,
  githubUrl,
  redis,
  namespace = 'bindery',
  log: serviceLog,
}: GitHubAppOptions): GitHubApp {
  const log = serviceLog.child({ component: 'github' });
  // Bottleneck closes the client it is given (and its subscriber), so it gets a copy of ours.
  const connection = redis
    ? new Bottleneck.IORedisConnection({ client: redis.duplicate() })
    : undefined;
  connection?.on('error', (error: Error) =>
    log.warn(`the rate limiter's Redis connection failed: ${error.message}`),
  );
  // Probot's own Redis option installs ioredis through npx at run time; this reuses ours.
  const throttle = connection ? { Bottleneck, connection, id: namespace } : {};
  const Octokit = connection
    ? ProbotOctokit.defaults((options: { throttle?: object }) => ({
        ...options,
        throttle: { ...options.throttle, ...throttle },
      }))
    : ProbotOctokit;
  const probot = new Probot({
    appId: app.appId,
    privateKey: app.privateKey,
    secret: app.webhookSecret,
    baseUrl: githubApiUrl(githubUrl),
    log: createProbotLog(log),
    Octokit,
  });
  let login: Promise<string> | undefined;
  return {
    probot,
    appId: app.appId,
    throttle,
    installation: (installationId) => probot.auth(installationId),
    async installationToken(installationId) {
      // Asked through the app's Octokit, which knows GHE's API root: Probot's own auth
      // strategy would ask api.github.com whatever the baseUrl (its request has no baseUrl).
      const octokit = await probot.auth();
      const { data } = await octokit.request(
        'POST /app/installations/{installation_id}/access_tokens',
        { installation_id: installationId },
      );
      return data.token;
    },
    botLogin() {
      login ??= probot
        .auth()
        .then((octokit) => octokit.rest.apps.getAuthenticated())
        .then(({ data }) => `${data?.slug}[bot]`);
      login.catch(() => (login = undefined));
      return login;
    },
    async close() {
      await connection?.disconnect(true);
    },
  };
}
