import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import type { ContainerEngine } from '../../src/engine/container-engine.js';
import { NotFoundError, UnavailableError } from '../../src/errors.js';
import { githubApiUrl, resolveGitHubRef } from '../../src/repos/github-refs.js';
import { parseSpec } from '../../src/repos/repo-spec.js';

const SHA = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const api = { apiUrl: 'https://api.github.com' };
/** GitHub's repository object, as much of it as says the repository is public. */
const PUBLIC = { private: false, visibility: 'public' };

beforeAll(() => {
  if (!nock.isActive()) nock.activate();
  nock.disableNetConnect();
});
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});
// nock patches Node's HTTP globally, and jest runs later test files in this same process:
// without this, Docker's and Redis's own traffic in integration tests would be refused.
afterAll(() => {
  nock.enableNetConnect();
  nock.restore();
});

describe('resolveGitHubRef', () => {
  it('asks the commits API for the SHA of a branch, HEAD or a short SHA', async () => {
    const repository = nock('https://api.github.com')
      .get('/repos/owner/repo')
      .times(3)
      .reply(200, PUBLIC);
    const github = nock('https://api.github.com', {
      reqheaders: { accept: 'application/vnd.github.sha' },
    })
      .get('/repos/owner/repo/commits/feature%2Fx')
      .reply(200, SHA)
      .get('/repos/owner/repo/commits/HEAD')
      .reply(200, SHA)
      .get('/repos/owner/repo/commits/abc1234')
      .reply(200, SHA);
    await expect(resolveGitHubRef(api, 'owner', 'repo', 'feature/x')).resolves.toBe(SHA);
    await expect(resolveGitHubRef(api, 'owner', 'repo', 'HEAD')).resolves.toBe(SHA);
    await expect(resolveGitHubRef(api, 'owner', 'repo', 'abc1234')).resolves.toBe(SHA);
    expect(github.isDone()).toBe(true);
    expect(repository.isDone()).toBe(true);
  });

  it('sends the token it is given', async () => {
    nock('https://api.github.com', { reqheaders: { authorization: 'Bearer ghs_installation' } })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    const token = async () => 'ghs_installation';
    await expect(resolveGitHubRef({ ...api, token }, 'owner', 'repo', 'main')).resolves.toBe(SHA);
  });

  it('says what is missing for an unknown ref or repository', async () => {
    nock('https://api.github.com')
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/nope')
      .reply(422, { message: 'No commit found' });
    const attempt = resolveGitHubRef(api, 'owner', 'repo', 'nope');
    await expect(attempt).rejects.toThrow(NotFoundError);
    await expect(attempt).rejects.toThrow(
      'GitHub has no repository owner/repo with a branch, tag or commit "nope"',
    );
  });

  it('names the rate limit and how to raise it', async () => {
    nock('https://api.github.com')
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1798200000' },
      );
    const attempt = resolveGitHubRef(api, 'owner', 'repo', 'main');
    await expect(attempt).rejects.toThrow(UnavailableError);
    await expect(attempt).rejects.toThrow(
      /rate limit is used up until \d\d:\d\d UTC; an operator can raise it with GITHUB_TOKEN/,
    );
  });
});

describe('gh specs in the builder', () => {
  it('resolve through the API of GHE_HOST with GITHUB_TOKEN', async () => {
    expect(githubApiUrl('https://github.com')).toBe('https://api.github.com');
    const config = loadConfig({
      GHE_HOST: 'github.corp',
      GHE_PROTOCOL: 'https',
      GITHUB_TOKEN: 'ghp_operator',
    });
    nock('https://github.corp', { reqheaders: { authorization: 'Bearer ghp_operator' } })
      .get('/api/v3/repos/team/notebooks')
      .reply(200, PUBLIC)
      .get('/api/v3/repos/team/notebooks/commits/HEAD')
      .reply(200, SHA);
    const builder = new Builder({
      engine: {} as ContainerEngine, // resolving touches no engine
      config,
      lookup: async () => [{ address: '203.0.114.7' }],
    });
    const resolved = await builder.resolve(
      parseSpec('gh', 'team/notebooks/HEAD', { githubUrl: config.githubUrl }),
    );
    expect(resolved).toMatchObject({
      ref: SHA,
      imageName: expect.stringMatching(new RegExp(`:${SHA}$`)),
    });
    expect(resolved.spec.url).toBe('https://github.corp/team/notebooks');
  });
});
