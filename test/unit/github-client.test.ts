import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Octokit } from '@octokit/rest';
import nock from 'nock';
import { NotFoundError, UnavailableError } from '../../src/errors.js';
import { createGitHubClient } from '../../src/repos/github-client.js';
import { resolveGitHubRef } from '../../src/repos/github-refs.js';

const API = 'https://api.github.com';
const SHA = 'c'.repeat(40);
const PUBLIC = { private: false, visibility: 'public' };
/** GitHub's "second" in these tests: waits are real, but short. */
const SECOND_MS = 50;

beforeAll(() => {
  if (!nock.isActive()) nock.activate();
  nock.disableNetConnect();
});
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
afterAll(() => {
  nock.enableNetConnect();
  nock.restore();
});

/** GitHub answering `owner/repo`'s repository object, as public. */
const publicRepository = () => nock(API).get('/repos/owner/repo').reply(200, PUBLIC);

/** Resolves owner/repo@main through a client that waits SECOND_MS for GitHub's second. */
async function resolveMain(options: { maxWaitSeconds?: number } = {}) {
  const octokit = await createGitHubClient({ apiUrl: API, secondMs: SECOND_MS, ...options });
  return resolveGitHubRef({ apiUrl: API, octokit }, 'owner', 'repo', 'main');
}

/** Counts the requests for owner/repo@main's commit that reach GitHub. */
function commitAnswers(
  ...answers: [status: number, body: unknown, headers?: Record<string, string>][]
) {
  const seen: number[] = [];
  let scope = nock(API);
  for (const [status, body, headers] of answers) {
    scope = scope
      .get('/repos/owner/repo/commits/main')
      .reply(() => (seen.push(Date.now()), [status, body as string, headers ?? {}]));
  }
  return seen;
}

describe('resolveGitHubRef through Octokit with retry and throttling', () => {
  it('retries a 5xx and succeeds when GitHub recovers', async () => {
    publicRepository();
    const seen = commitAnswers([502, 'Bad Gateway'], [503, 'Service Unavailable'], [200, SHA]);
    await expect(resolveMain()).resolves.toBe(SHA);
    expect(seen).toHaveLength(3);
    // plugin-retry's pauses: 1 and 4 of GitHub's seconds.
    expect(seen[2]! - seen[0]!).toBeGreaterThanOrEqual(5 * SECOND_MS - 5);
  });

  it('gives up after three 5xx answers with a sentence', async () => {
    publicRepository();
    const seen = commitAnswers([500, ''], [500, ''], [500, '']);
    const attempt = resolveMain();
    await expect(attempt).rejects.toThrow(UnavailableError);
    await expect(attempt).rejects.toThrow(
      "GitHub's API answered 500 for owner/repo@main; try again.",
    );
    expect(seen).toHaveLength(3);
  });

  it('retries a connection that failed', async () => {
    publicRepository();
    nock(API)
      .get('/repos/owner/repo/commits/main')
      .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' })
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    await expect(resolveMain()).resolves.toBe(SHA);
  });

  it('answers a 404 with the sentence it always did, asking once', async () => {
    publicRepository();
    const seen = commitAnswers([404, { message: 'Not Found' }]);
    const attempt = resolveMain();
    await expect(attempt).rejects.toThrow(NotFoundError);
    await expect(attempt).rejects.toThrow(
      'GitHub has no repository owner/repo with a branch, tag or commit "main" (or the repository is private).',
    );
    await new Promise((resolve) => setTimeout(resolve, 3 * SECOND_MS));
    expect(seen).toHaveLength(1);
  });

  it('waits out a secondary rate limit for its Retry-After, then asks again', async () => {
    publicRepository();
    const seen = commitAnswers(
      [403, { message: 'You have exceeded a secondary rate limit.' }, { 'retry-after': '2' }],
      [200, SHA],
    );
    await expect(resolveMain()).resolves.toBe(SHA);
    expect(seen).toHaveLength(2);
    expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(2 * SECOND_MS - 5);
  });

  it('says so when a secondary rate limit outlasts the one wait', async () => {
    publicRepository();
    const limited = [
      403,
      { message: 'You have exceeded a secondary rate limit.' },
      { 'retry-after': '1' },
    ] as [number, unknown, Record<string, string>];
    const seen = commitAnswers(limited, limited);
    const attempt = resolveMain();
    await expect(attempt).rejects.toThrow(UnavailableError);
    await expect(attempt).rejects.toThrow(
      "GitHub's API asks Bindery to slow down (its secondary rate limit) for 1 s; try again after that.",
    );
    expect(seen).toHaveLength(2);
  });

  it('does not sit through a secondary rate limit longer than a launch can wait', async () => {
    publicRepository();
    const seen = commitAnswers([
      403,
      { message: 'You have exceeded a secondary rate limit.' },
      { 'retry-after': '600' },
    ]);
    await expect(resolveMain({ maxWaitSeconds: 20 })).rejects.toThrow(
      "GitHub's API asks Bindery to slow down (its secondary rate limit) for 600 s; try again after that.",
    );
    expect(seen).toHaveLength(1);
  });

  it('waits for a used-up rate limit that resets within seconds', async () => {
    publicRepository();
    // The reset is in whole seconds of the real clock, so this waits up to 2 real seconds.
    const reset = String(Math.ceil(Date.now() / 1000));
    const seen = commitAnswers(
      [
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset },
      ],
      [200, SHA],
    );
    const octokit = await createGitHubClient({ apiUrl: API });
    await expect(resolveGitHubRef({ apiUrl: API, octokit }, 'owner', 'repo', 'main')).resolves.toBe(
      SHA,
    );
    expect(seen).toHaveLength(2);
  });

  it('names an hourly rate limit that is used up, without waiting for it', async () => {
    publicRepository();
    const reset = Math.floor(Date.now() / 1000) + 3600;
    const seen = commitAnswers([
      403,
      { message: 'API rate limit exceeded' },
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
    ]);
    const attempt = resolveMain();
    await expect(attempt).rejects.toThrow(
      `GitHub's API rate limit is used up until ${new Date(reset * 1000).toISOString().slice(11, 16)} UTC; an operator can raise it with GITHUB_TOKEN.`,
    );
    expect(seen).toHaveLength(1);
  });
});

describe("GitHub's answers", () => {
  it('reads the SHA whatever the media type is labelled, as GitHub Enterprise labels it', async () => {
    nock(API)
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA, { 'content-type': 'application/vnd.github.sha' });
    await expect(resolveMain()).resolves.toBe(SHA);
  });

  it('refuses a repository GitHub calls private, whatever the token can read', async () => {
    nock(API)
      .get('/repos/owner/repo')
      .reply(200, { private: true, visibility: 'private' })
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    await expect(resolveMain()).rejects.toThrow(
      'owner/repo is a private repository on GitHub; Bindery launches public repositories only',
    );
  });
});

describe('who GitHub is asked as', () => {
  it('sends the token it is given through the shared client', async () => {
    const github = nock(API, { reqheaders: { authorization: 'Bearer ghp_configured' } })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    const token = async () => 'ghp_configured';
    await expect(resolveGitHubRef({ apiUrl: API, token }, 'owner', 'repo', 'main')).resolves.toBe(
      SHA,
    );
    expect(github.isDone()).toBe(true);
  });

  it('sends no Authorization without a token', async () => {
    const github = nock(API, { badheaders: ['authorization'] })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    await expect(resolveGitHubRef({ apiUrl: API }, 'owner', 'repo', 'main')).resolves.toBe(SHA);
    expect(github.isDone()).toBe(true);
  });

  it("lets an injected Octokit (the app's) authenticate itself, instead of the token", async () => {
    const github = nock(API, { reqheaders: { authorization: 'token ghs_app_installation' } })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    const octokit = new Octokit({ auth: 'ghs_app_installation', baseUrl: API });
    const token = async () => 'ghp_not_sent';
    await expect(
      resolveGitHubRef({ apiUrl: API, octokit, token }, 'owner', 'repo', 'main'),
    ).resolves.toBe(SHA);
    expect(github.isDone()).toBe(true);
  });

  it('sends the token a client was made with', async () => {
    const github = nock(API, { reqheaders: { authorization: 'token ghp_client' } })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    const octokit = await createGitHubClient({ apiUrl: API, token: 'ghp_client' });
    await expect(resolveGitHubRef({ apiUrl: API, octokit }, 'owner', 'repo', 'main')).resolves.toBe(
      SHA,
    );
    expect(github.isDone()).toBe(true);
  });

  it('asks the GitHub Enterprise API it is given', async () => {
    const apiUrl = 'https://ghe.example.test/api/v3';
    const github = nock('https://ghe.example.test')
      .get('/api/v3/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/api/v3/repos/owner/repo/commits/main')
      .reply(200, SHA);
    await expect(resolveGitHubRef({ apiUrl }, 'owner', 'repo', 'main')).resolves.toBe(SHA);
    expect(github.isDone()).toBe(true);
  });
});
