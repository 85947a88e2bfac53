import { UnrecoverableError } from 'bullmq';

/** What Octokit's RequestError (`HttpError`) carries that this reads. */
interface GitHubRequestError {
  name: string;
  status: number;
  message: string;
  request?: { method?: string; url?: string };
  response?: { headers?: Record<string, string | number | undefined> };
}

const isGitHubRequestError = (error: unknown): error is GitHubRequestError =>
  error instanceof Error &&
  error.name === 'HttpError' &&
  typeof (error as { status?: unknown }).status === 'number';

/**
 * A rate limit: `403` or `429` with no requests left, a `retry-after`, or GitHub's words for
 * its primary and secondary limits (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
 * Probot's throttling plugin waits most of these out before they get here; any that still
 * arrive are tried again.
 */
function isRateLimit(error: GitHubRequestError): boolean {
  const headers = error.response?.headers ?? {};
  return (
    error.status === 429 ||
    String(headers['x-ratelimit-remaining']) === '0' ||
    headers['retry-after'] !== undefined ||
    /rate limit/i.test(error.message)
  );
}

/**
 * An UnrecoverableError for a GitHub answer that will be the same however often it is asked
 * (422 validation, 404 of a deleted repository or installation, 401 and 403 other than rate
 * limits, any other 4xx but 408), so the job is not tried again; undefined for anything worth
 * another try: 5xx, network errors, timeouts, rate limits, errors that are not GitHub's answers.
 */
export function permanentGitHubError(error: unknown): UnrecoverableError | undefined {
  if (!isGitHubRequestError(error)) return undefined;
  const { status } = error;
  if (status < 400 || status >= 500 || status === 408 || isRateLimit(error)) return undefined;
  const call = error.request?.url
    ? ` to ${error.request.method ?? 'GET'} ${new URL(error.request.url).pathname}`
    : '';
  const reason = error.message.replace(/\s+/g, ' ').trim().slice(0, 300);
  return new UnrecoverableError(
    `GitHub answered ${status}${call} (${reason}); not tried again, as it would answer the same.`,
  );
}
