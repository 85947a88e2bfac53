import { UnrecoverableError } from 'bullmq';
import { NotFoundError } from '../../src/errors.js';
import { permanentGitHubError } from '../../src/github/permanent-github-error.js';

/** An error shaped as Octokit's RequestError (`HttpError`) for `status`. */
function gitHubAnswer(status: number, message: string, headers: Record<string, string> = {}) {
  return Object.assign(new Error(message), {
    name: 'HttpError',
    status,
    request: { method: 'POST', url: 'https://api.github.com/repos/o/r/check-runs', headers: {} },
    response: { status, url: '', headers, data: { message } },
  });
}

test.each([
  [422, 'Validation Failed'],
  [404, 'Not Found'],
  [401, 'Bad credentials'],
  [403, 'Resource not accessible by integration'],
  [410, 'Gone'],
])('%s %s is not tried again, in one sentence', (status, message) => {
  const error = permanentGitHubError(gitHubAnswer(status, message));
  expect(error).toBeInstanceOf(UnrecoverableError);
  expect(error?.message).toBe(
    `GitHub answered ${status} to POST /repos/o/r/check-runs (${message}); not tried again, as it would answer the same.`,
  );
});

test.each([
  ['a 502', gitHubAnswer(502, 'Server Error')],
  ['a 500 for a network failure', gitHubAnswer(500, 'fetch failed')],
  ['a request timeout', gitHubAnswer(408, 'Timeout')],
  [
    'a used-up rate limit',
    gitHubAnswer(403, 'API rate limit exceeded', { 'x-ratelimit-remaining': '0' }),
  ],
  [
    'a secondary rate limit',
    gitHubAnswer(403, 'You have exceeded a secondary rate limit.', { 'retry-after': '60' }),
  ],
  ['a 429', gitHubAnswer(429, 'Too Many Requests')],
  ['an error of our own with an HTTP status', new NotFoundError('no such thing')],
  [
    'a connection refused',
    Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
  ],
])('%s is tried again', (_what, error) => {
  expect(permanentGitHubError(error)).toBeUndefined();
});
