import type { Octokit } from '@octokit/rest';

/**
 * What Bindery asks of a GitHub client: Octokit's `request`. An @octokit/rest Octokit has it,
 * and so has the GitHub App's installation Octokit (Probot's, with its own auth and throttling).
 */
export type GitHubClient = Pick<Octokit, 'request'>;

export interface GitHubClientOptions {
  /** `https://api.github.com`, or `<GHE_PROTOCOL>://<GHE_HOST>/api/v3` (githubApiUrl). */
  apiUrl: string;
  /** A token the client sends with every request (GITHUB_TOKEN). @defaultValue none */
  token?: string;
  /**
   * The longest rate-limit wait sat through before answering with a sentence instead: a person
   * is waiting for the launch. Longer waits (a used-up hourly limit) are not waited. @defaultValue 20
   */
  maxWaitSeconds?: number;
  /** How long GitHub's "second" lasts, in ms; tests shorten it. @defaultValue 1000 */
  secondMs?: number;
  /**
   * More options for @octokit/plugin-throttling: `{ Bottleneck, connection, id }` to share the
   * GitHub App's limits through Redis. The plugin makes its limiter groups once per process,
   * with the options of the first client that sends a request: a process that runs the app
   * should pass the app's options here, or its own client's limits stay in this process.
   */
  throttle?: Record<string, unknown>;
  /**
   * Where Octokit's lines go (a pino logger fits). A failed request, which Bindery answers with
   * a sentence of its own, is written at debug; Octokit's warnings at warn. @defaultValue none
   */
  log?: { debug(message: string): void; warn(message: string): void };
}

/** Clients by option set: one per API, so its limits are counted across requests. */
const shared = new Map<string, Promise<GitHubClient>>();

/**
 * An Octokit for GitHub's REST API with Probot's two plugins: retry (5xx and network failures,
 * twice, after 1 s and 4 s) and throttling (a rate limit's Retry-After or reset waited out, once,
 * when it ends within `maxWaitSeconds`). Loaded on first use, so that commands that never
 * ask GitHub (`bindery build <dir>`) do not load Octokit.
 */
export async function createGitHubClient({
  apiUrl,
  token,
  maxWaitSeconds = 20,
  secondMs = 1000,
  throttle = {},
  log,
}: GitHubClientOptions): Promise<GitHubClient> {
  const [{ Octokit }, { retry }, { throttling }] = await Promise.all([
    import('@octokit/rest'),
    import('@octokit/plugin-retry'),
    import('@octokit/plugin-throttling'),
  ]);
  const waitOnce = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
    retryCount < 1 && retryAfter <= maxWaitSeconds;
  // Probot's order: throttling wraps retry's attempts.
  const Client = Octokit.plugin(throttling, retry);
  return new Client({
    baseUrl: apiUrl.replace(/\/+$/, ''),
    ...(token ? { auth: token } : {}),
    userAgent: 'bindery',
    log: {
      debug: (message: string) => log?.debug(message),
      info: (message: string) => log?.debug(message),
      warn: (message: string) => log?.warn(message),
      error: (message: string) => log?.debug(message),
    },
    retry: { retries: 2, retryAfterBaseValue: secondMs },
    throttle: {
      retryAfterBaseValue: secondMs,
      onRateLimit: waitOnce,
      onSecondaryRateLimit: waitOnce,
      ...throttle,
    },
  });
}

/** The client for `apiUrl` that callers without one of their own share (createGitHubClient). */
export function sharedGitHubClient(apiUrl: string): Promise<GitHubClient> {
  let client = shared.get(apiUrl);
  if (!client) {
    client = createGitHubClient({ apiUrl });
    client.catch(() => shared.delete(apiUrl));
    shared.set(apiUrl, client);
  }
  return client;
}
