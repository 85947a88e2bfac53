import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { ProbotOctokit } from 'probot';
import { loadConfig } from '../../src/config.js';
import { ForbiddenError, InvalidInputError } from '../../src/errors.js';
import type { InstallationOctokit } from '../../src/github/github-app.js';
import { githubProvider } from '../../src/repos/providers/github-provider.js';

const SHA = 'd'.repeat(40);
const PUBLIC = { private: false, visibility: 'public' };
const publicLookup = async () => [{ address: '140.82.112.3' }];

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

describe('gh specs', () => {
  it.each([
    ['owner/repo/main', 'https://github.com/owner/repo', 'main', 'owner-repo', 'gh/owner/repo'],
    ['owner/repo.git/v1.0', 'https://github.com/owner/repo', 'v1.0', 'owner-repo', 'gh/owner/repo'],
    ['o/r/feature/x', 'https://github.com/o/r', 'feature/x', 'o-r', 'gh/o/r'],
    ['o/r/feature%2Fx', 'https://github.com/o/r', 'feature/x', 'o-r', 'gh/o/r'],
    [
      'my.org/a_b-c/HEAD',
      'https://github.com/my.org/a_b-c',
      'HEAD',
      'my.org-a_b-c',
      'gh/my.org/a_b-c',
    ],
  ])('%s is %s at %s, slug %s', (spec, url, ref, buildSlug, repoLabel) => {
    expect(githubProvider.parseSpec(spec)).toEqual({
      provider: 'gh',
      url,
      ref,
      buildSlug,
      repoLabel,
    });
  });

  it('lives on GitHub Enterprise when given its URL', () => {
    expect(githubProvider.parseSpec('t/r/main', { githubUrl: 'http://ghe.test' }).url).toBe(
      'http://ghe.test/t/r',
    );
  });

  it.each([
    ['owner/repo', 'GitHub specs look like gh/OWNER/REPO/REF; "owner/repo" is not one.'],
    ['owner//main', 'GitHub specs look like gh/OWNER/REPO/REF; "owner//main" is not one.'],
    ['own er/repo/main', '"own er/repo" is not a GitHub repository name.'],
    [
      'owner/repo/--upload-pack=x',
      '"--upload-pack=x" is not a valid git ref; use a branch name, a tag, a full commit SHA or HEAD.',
    ],
    ['owner/repo/%E0%A4%A', 'The ref "%E0%A4%A" is not correctly URL-escaped.'],
  ])('refuses %s with a sentence', (spec, sentence) => {
    expect(() => githubProvider.parseSpec(spec)).toThrow(InvalidInputError);
    expect(() => githubProvider.parseSpec(spec)).toThrow(sentence);
  });
});

describe('gh links and ban subjects', () => {
  const spec = githubProvider.parseSpec('Owner/Repo/feature%2Fx');

  it('links the repository and the commit as GitHub shows them', () => {
    expect(githubProvider.repoUrl(spec)).toBe('https://github.com/Owner/Repo');
    expect(githubProvider.refUrl(spec, SHA)).toBe(`https://github.com/Owner/Repo/tree/${SHA}`);
  });

  it('writes its spec path with the name as is and the ref escaped', () => {
    expect(githubProvider.specPath(spec, 'feature/x')).toBe('Owner/Repo/feature%2Fx');
    expect(githubProvider.specPath(spec, SHA)).toBe(`Owner/Repo/${SHA}`);
  });

  it('is matched decoded and with its ref escaped', () => {
    expect(githubProvider.banSubjects(spec)).toEqual([
      'gh/Owner/Repo/feature/x',
      'gh/Owner/Repo/feature%2Fx',
    ]);
  });
});

describe('gh refs', () => {
  const config = loadConfig({ GITHUB_TOKEN: 'ghp_operator' });

  it("asks GitHub's API with GITHUB_TOKEN", async () => {
    const github = nock('https://api.github.com', {
      reqheaders: { authorization: 'Bearer ghp_operator' },
    })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/main')
      .reply(200, SHA);
    const spec = githubProvider.parseSpec('owner/repo/main');
    await expect(githubProvider.resolveRef(spec, { config, lookup: publicLookup })).resolves.toBe(
      SHA,
    );
    expect(github.isDone()).toBe(true);
  });

  it('asks the installation token for the repository, when given that', async () => {
    const asked: string[] = [];
    nock('https://api.github.com', { reqheaders: { authorization: 'Bearer ghs_installation' } })
      .get('/repos/team/notes')
      .reply(200, PUBLIC)
      .get('/repos/team/notes/commits/HEAD')
      .reply(200, SHA);
    const githubToken = async (owner: string, repo: string) => {
      asked.push(`${owner}/${repo}`);
      return 'ghs_installation';
    };
    const spec = githubProvider.parseSpec('team/notes/HEAD');
    await expect(
      githubProvider.resolveRef(spec, { config, lookup: publicLookup, githubToken }),
    ).resolves.toBe(SHA);
    expect(asked).toEqual(['team/notes']);
  });

  it("goes through the GitHub App's Octokit when given it, which authenticates itself", async () => {
    nock('https://api.github.com', { reqheaders: { authorization: 'token ghs_app' } })
      .get('/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/repos/owner/repo/commits/v2')
      .reply(502, 'Bad Gateway')
      .get('/repos/owner/repo/commits/v2')
      .reply(200, SHA);
    // Probot's client, as GitHubApp.installation gives it, with Probot's own retry plugin.
    const github: InstallationOctokit = new ProbotOctokit({
      auth: { token: 'ghs_app' },
      retry: { retryAfterBaseValue: 10 },
    });
    const spec = githubProvider.parseSpec('owner/repo/v2');
    await expect(
      githubProvider.resolveRef(spec, { config, lookup: publicLookup, github }),
    ).resolves.toBe(SHA);
  });

  it('asks the API of GHE_HOST', async () => {
    const ghe = loadConfig({ GHE_HOST: 'ghe.example.test', GHE_PROTOCOL: 'https' });
    nock('https://ghe.example.test')
      .get('/api/v3/repos/owner/repo')
      .reply(200, PUBLIC)
      .get('/api/v3/repos/owner/repo/commits/main')
      .reply(200, SHA);
    const spec = githubProvider.parseSpec('owner/repo/main', { githubUrl: ghe.githubUrl });
    await expect(
      githubProvider.resolveRef(spec, { config: ghe, lookup: publicLookup }),
    ).resolves.toBe(SHA);
  });

  it('checks the host as for a clone before asking its API', async () => {
    const ghe = loadConfig({ GHE_HOST: 'ghe.internal.test' });
    const spec = githubProvider.parseSpec('owner/repo/main', { githubUrl: ghe.githubUrl });
    const attempt = githubProvider.resolveRef(spec, {
      config: ghe,
      lookup: async () => [{ address: '10.1.2.3' }],
    });
    await expect(attempt).rejects.toThrow(ForbiddenError);
    await expect(attempt).rejects.toThrow('The git host ghe.internal.test resolves to 10.1.2.3');
  });
});
