import { NotFoundError, UnavailableError } from '../errors.js';

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

/**
 * Resolves `ref` (branch, tag, SHA or abbreviated SHA; `HEAD` is the default branch) of
 * `owner/repo` to a full commit SHA with GitHub's REST API, as BinderHub's GitHub provider does.
 */
export async function resolveGitHubRef(
  api: GitHubApi,
  owner: string,
  repo: string,
  ref: string,
): Promise<string> {
  const token = await api.token?.();
  const url = `${api.apiUrl}/repos/${owner}/${repo}/commits/${encodeURIComponent(ref)}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        accept: 'application/vnd.github.sha',
        'user-agent': 'bindery',
        'x-github-api-version': '2022-11-28',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new UnavailableError(
      `GitHub's API did not answer (${(error as Error).message}); try again.`,
    );
  }
  const body = await response.text();
  if (response.ok && /^[0-9a-f]{40}$/.test(body.trim())) return body.trim();
  if (response.status === 404 || response.status === 422) {
    throw new NotFoundError(
      `GitHub has no repository ${owner}/${repo} with a branch, tag or commit "${ref}" (or the repository is private).`,
    );
  }
  if (
    (response.status === 403 || response.status === 429) &&
    response.headers.get('x-ratelimit-remaining') === '0'
  ) {
    const reset = new Date(Number(response.headers.get('x-ratelimit-reset')) * 1000);
    throw new UnavailableError(
      `GitHub's API rate limit is used up until ${reset.toISOString().slice(11, 16)} UTC; ` +
        `an operator can raise it with GITHUB_TOKEN.`,
    );
  }
  if (response.status === 401) {
    throw new UnavailableError(
      'GitHub refused the token Bindery sent (GITHUB_TOKEN or the app installation).',
    );
  }
  throw new UnavailableError(
    `GitHub's API answered ${response.status} for ${owner}/${repo}@${ref}; try again.`,
  );
}
