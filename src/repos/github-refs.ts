import { ForbiddenError, NotFoundError, UnavailableError } from '../errors.js';

export interface GitHubApi {
  /** `https://api.github.com`, or `<GHE_PROTOCOL>://<GHE_HOST>/api/v3` for GitHub Enterprise. */
  apiUrl: string;
  /** The installation token when the app is installed on the repository, else GITHUB_TOKEN. */
  token?: () => Promise<string | undefined>;
}

/** The REST API's root for a GitHub web URL (`https://github.com` or a GHE host). */
export function githubApiUrl(githubUrl: string): string {
  const url = new URL(githubUrl);
  return url.hostname === 'github.com' ? 'https://api.github.com' : `${url.origin}/api/v3`;
}

/** GitHub's answer to one request: its status, headers and text. */
interface Answer {
  status: number;
  ok: boolean;
  headers: Headers;
  body: string;
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
  const token = await api.token?.();
  const ask = async (path: string, accept: string): Promise<Answer> => {
    try {
      const response = await fetch(`${api.apiUrl}/repos/${owner}/${repo}${path}`, {
        headers: {
          accept,
          'user-agent': 'bindery',
          'x-github-api-version': '2022-11-28',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        signal: AbortSignal.timeout(30_000),
      });
      const { status, ok, headers } = response;
      return { status, ok, headers, body: await response.text() };
    } catch (error) {
      throw new UnavailableError(
        `GitHub's API did not answer (${(error as Error).message}); try again.`,
      );
    }
  };
  const [repository, commit] = await Promise.all([
    ask('', 'application/vnd.github+json'),
    ask(`/commits/${encodeURIComponent(ref)}`, 'application/vnd.github.sha'),
  ]);
  if (repository.ok && !isPublic(repository.body)) {
    throw new ForbiddenError(
      `${owner}/${repo} is a private repository on GitHub; Bindery launches public repositories ` +
        `only, so that a link never shows code its visitor cannot read. Make the repository ` +
        `public to launch it here.`,
    );
  }
  for (const answer of [repository, commit]) {
    if (!answer.ok) throw refusal(answer, owner, repo, ref);
  }
  const sha = commit.body.trim();
  if (/^[0-9a-f]{40}$/.test(sha)) return sha;
  throw new UnavailableError(
    `GitHub's API answered ${owner}/${repo}@${ref} with something other than a commit SHA; try again.`,
  );
}

/** Whether GitHub's repository object says `public`; anything unreadable counts as not. */
function isPublic(body: string): boolean {
  try {
    const repository = JSON.parse(body) as { private?: unknown; visibility?: unknown };
    return (
      repository.private === false &&
      (repository.visibility === undefined || repository.visibility === 'public')
    );
  } catch {
    return false;
  }
}

/** The error for a failed answer: what is missing, or why GitHub would not say. */
function refusal(answer: Answer, owner: string, repo: string, ref: string): Error {
  if (answer.status === 404 || answer.status === 422) {
    return new NotFoundError(
      `GitHub has no repository ${owner}/${repo} with a branch, tag or commit "${ref}" (or the repository is private).`,
    );
  }
  if (
    (answer.status === 403 || answer.status === 429) &&
    answer.headers.get('x-ratelimit-remaining') === '0'
  ) {
    const reset = new Date(Number(answer.headers.get('x-ratelimit-reset')) * 1000);
    return new UnavailableError(
      `GitHub's API rate limit is used up until ${reset.toISOString().slice(11, 16)} UTC; ` +
        `an operator can raise it with GITHUB_TOKEN.`,
    );
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
