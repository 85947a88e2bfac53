import { isAnyArrayBuffer } from 'node:util/types';
import { ForbiddenError, NotFoundError, UnavailableError } from '../errors.js';
import { sharedGitHubClient, type GitHubClient } from './github-client.js';

export interface GitHubApi {
  /** `https://api.github.com`, or `<GHE_PROTOCOL>://<GHE_HOST>/api/v3` for GitHub Enterprise. */
  apiUrl: string;
  /**
   * The client to ask through, authenticated its own way: the GitHub App's Octokit. Without,
   * the shared client for `apiUrl` (retry and throttling, github-client.ts), sending `token`.
   */
  octokit?: GitHubClient;
  /** GITHUB_TOKEN, or an installation's token; sent only by the shared client. */
  token?: () => Promise<string | undefined>;
  /** How long resolving may take, retries and rate-limit waits included. @defaultValue 60000 */
  timeoutMs?: number;
  /**
   * Resolve a private repository too: only when `token` is a signed-in user's who may read it
   * (src/web/private-access.ts), never for the operator's or the app's token.
   */
  allowPrivate?: boolean;
}

/** The REST API's root for a GitHub web URL (`https://github.com` or a GHE host). */
export function githubApiUrl(githubUrl: string): string {
  const url = new URL(githubUrl);
  return url.hostname === 'github.com' ? 'https://api.github.com' : `${url.origin}/api/v3`;
}

/** GitHub's answer to one request, after Octokit's retries and waits: status, headers, body. */
interface Answer {
  status: number;
  ok: boolean;
  headers: Record<string, string | number | undefined>;
  data: unknown;
}

/**
 * Resolves `ref` (branch, tag, SHA or abbreviated SHA; `HEAD` is the default branch) of
 * `owner/repo` to a full commit SHA with GitHub's REST API, as BinderHub's GitHub provider does.
 *
 * Only a public repository resolves. The token (GITHUB_TOKEN or an app installation's) is there
 * for rate limits, and it may read private repositories: had it decided what launches, anyone
 * could launch a private repository the app has prebuilt, knowing only its name. So the
 * repository's visibility is asked alongside the commit, and anything but `public` is refused.
 */
export async function resolveGitHubRef(
  api: GitHubApi,
  owner: string,
  repo: string,
  ref: string,
): Promise<string> {
  const client = api.octokit ?? (await sharedGitHubClient(api.apiUrl));
  const token = api.octokit ? undefined : await api.token?.();
  const signal = AbortSignal.timeout(api.timeoutMs ?? 60_000);
  const ask = async (route: string, accept: string, parameters = {}): Promise<Answer> => {
    try {
      const { status, headers, data } = await client.request(route, {
        owner,
        repo,
        ...parameters,
        headers: {
          accept,
          'x-github-api-version': '2022-11-28',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        request: { signal },
      });
      return { status, ok: true, headers, data };
    } catch (error) {
      const { status, response } = error as {
        status?: number;
        response?: { headers: Answer['headers']; data: unknown };
      };
      // Octokit throws every 4xx and 5xx with GitHub's response; a request that got no answer
      // (a refused connection, the timeout) has none.
      if (status && response)
        return { status, ok: false, headers: response.headers, data: response.data };
      throw new UnavailableError(
        `GitHub's API did not answer (${(error as Error).message}); try again.`,
        { cause: error },
      );
    }
  };
  const [repository, commit] = await Promise.all([
    ask('GET /repos/{owner}/{repo}', 'application/vnd.github+json'),
    ask('GET /repos/{owner}/{repo}/commits/{ref}', 'application/vnd.github.sha', { ref }),
  ]);
  if (repository.ok && !api.allowPrivate && !isPublic(repository.data)) {
    throw new ForbiddenError(
      `${owner}/${repo} is a private repository on GitHub; Bindery launches public repositories ` +
        `only, so that a link never shows code its visitor cannot read. Make the repository ` +
        `public to launch it here.`,
    );
  }
  for (const answer of [repository, commit]) {
    if (!answer.ok) throw refusal(answer, owner, repo, ref);
  }
  const sha = textOf(commit.data).trim();
  if (/^[0-9a-f]{40}$/.test(sha)) return sha;
  throw new UnavailableError(
    `GitHub's API answered ${owner}/${repo}@${ref} with something other than a commit SHA; try again.`,
  );
}

/**
 * A body as text: Octokit gives text, parsed JSON or (for a media type it does not know, as
 * `application/vnd.github.sha` without a charset) an ArrayBuffer.
 */
function textOf(data: unknown): string {
  if (typeof data === 'string') return data;
  if (isAnyArrayBuffer(data)) return Buffer.from(data).toString('utf8');
  return JSON.stringify(data ?? '');
}

/** Whether GitHub's repository object says `public`; anything unreadable counts as not. */
function isPublic(data: unknown): boolean {
  let repository: { private?: unknown; visibility?: unknown };
  try {
    repository = (typeof data === 'object' && data !== null ? data : JSON.parse(textOf(data))) as {
      private?: unknown;
      visibility?: unknown;
    };
  } catch {
    return false;
  }
  return (
    repository?.private === false &&
    (repository.visibility === undefined || repository.visibility === 'public')
  );
}

/** GitHub's message in an error body, if it has one. */
function messageOf(answer: Answer): string {
  const { data } = answer;
  if (typeof data === 'object' && data !== null && 'message' in data) return String(data.message);
  return textOf(data);
}

/** The error for a failed answer: what is missing, or why GitHub would not say. */
function refusal(answer: Answer, owner: string, repo: string, ref: string): Error {
  if (answer.status === 404 || answer.status === 422) {
    return new NotFoundError(
      `GitHub has no repository ${owner}/${repo} with a branch, tag or commit "${ref}" (or the repository is private).`,
    );
  }
  if (answer.status === 403 || answer.status === 429) {
    if (String(answer.headers['x-ratelimit-remaining']) === '0') {
      const reset = new Date(Number(answer.headers['x-ratelimit-reset']) * 1000);
      return new UnavailableError(
        `GitHub's API rate limit is used up until ${reset.toISOString().slice(11, 16)} UTC; ` +
          `an operator can raise it with GITHUB_TOKEN.`,
      );
    }
    // The plugin waited once already where GitHub asked for a short pause.
    if (/\bsecondary rate\b/i.test(messageOf(answer)) || answer.headers['retry-after']) {
      const after = Number(answer.headers['retry-after']) || 60;
      return new UnavailableError(
        `GitHub's API asks Bindery to slow down (its secondary rate limit) for ${after} s; ` +
          `try again after that.`,
      );
    }
  }
  if (answer.status === 401) {
    return new UnavailableError(
      'GitHub refused the token Bindery sent (GITHUB_TOKEN or the app installation).',
    );
  }
  return new UnavailableError(
    `GitHub's API answered ${answer.status} for ${owner}/${repo}@${ref}; try again.`,
  );
}
