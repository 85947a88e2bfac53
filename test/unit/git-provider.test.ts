import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { ForbiddenError, InvalidInputError, NotFoundError } from '../../src/errors.js';
import { gitProvider } from '../../src/repos/providers/git-provider.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';

const SHA = '0'.repeat(40);

describe('git specs', () => {
  it.each([
    [
      'https%3A%2F%2Fgit.example.org%2Fteam%2Frepo.git/main',
      'https://git.example.org/team/repo.git',
      'main',
    ],
    ['https%3A%2F%2FGit.Example.org%2Fa/feature/x', 'https://git.example.org/a', 'feature/x'],
    ['git%3A%2F%2Fgit.example.org%2Fr/v1%2E0', 'git://git.example.org/r', 'v1.0'],
  ])('%s is %s at %s, the URL its slug', (spec, url, ref) => {
    expect(gitProvider.parseSpec(spec)).toEqual({
      provider: 'git',
      url,
      ref,
      buildSlug: url,
      repoLabel: `git/${url}`,
    });
  });

  it.each([
    [
      'https%3A%2F%2Fhost%2Fr',
      'Git specs look like git/URL-ESCAPED-URL/REF; "https%3A%2F%2Fhost%2Fr" is not one.',
    ],
    ['file%3A%2F%2F%2Fetc/main', 'file URLs are not supported; use an http, https or git URL.'],
    [
      'https%3A%2F%2Fu%3Ap%40host%2Fr/main',
      'Remove the credentials from host in the URL; Bindery builds public repositories only.',
    ],
    [
      'git%40host%3Ar.git/main',
      'git@host:r.git is an SSH address; Bindery clones public repositories over https, e.g. https://host/r.git.',
    ],
    [
      'https%3A%2F%2Fhost%2Fr/a..b',
      '"a..b" is not a valid git ref; use a branch name, a tag, a full commit SHA or HEAD.',
    ],
  ])('refuses %s with a sentence', (spec, sentence) => {
    expect(() => gitProvider.parseSpec(spec)).toThrow(InvalidInputError);
    expect(() => gitProvider.parseSpec(spec)).toThrow(sentence);
  });
});

describe('git links and ban subjects', () => {
  const spec = gitProvider.parseSpec(
    'https%3A%2F%2Fgit.example.org%2F%2Fteam%2F%2Frepo.git/feature%2Fx',
  );

  it('links the repository; a plain git host has no page per commit', () => {
    expect(gitProvider.repoUrl(spec)).toBe('https://git.example.org//team//repo');
    expect(gitProvider.refUrl(spec, SHA)).toBe('https://git.example.org//team//repo.git');
  });

  it('writes its spec path with the URL and the ref escaped', () => {
    expect(gitProvider.specPath(spec, SHA)).toBe(
      `https%3A%2F%2Fgit.example.org%2F%2Fteam%2F%2Frepo.git/${SHA}`,
    );
  });

  it('is matched with runs of slashes in the path made one, the scheme’s kept', () => {
    expect(gitProvider.banSubjects(spec)).toEqual([
      'git/https://git.example.org/team/repo.git/feature/x',
      'git/https%3A%2F%2Fgit.example.org%2Fteam%2Frepo.git/feature%2Fx',
    ]);
  });
});

describe('git refs, from a git server on this machine', () => {
  let server: GitServer;
  let published: { url: string; sha: string };
  let tagged: string;
  const config = loadConfig({ BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1' });

  beforeAll(async () => {
    server = await startGitServer();
    published = await server.publish('provider', 'test/fixtures/repos/default');
    tagged = await server.commit('provider', { 'notes.txt': 'second\n' }, 'v2');
  });
  afterAll(() => server.close());

  const specAt = (ref: string) =>
    gitProvider.parseSpec(`${encodeURIComponent(published.url)}/${encodeURIComponent(ref)}`);

  it.each([
    ['HEAD', () => tagged],
    ['main', () => tagged],
    ['v2', () => tagged],
  ])('resolves %s with ls-remote', async (ref, expected) => {
    await expect(gitProvider.resolveRef(specAt(ref), { config })).resolves.toBe(expected());
  });

  it('says which branch or tag is missing', async () => {
    await expect(gitProvider.resolveRef(specAt('nope'), { config })).rejects.toThrow(
      new NotFoundError(`${published.url} has no branch or tag named "nope".`),
    );
  });

  it('refuses the loopback host unless BINDERY_GIT_ALLOWED_HOSTS names it', async () => {
    const attempt = gitProvider.resolveRef(specAt('main'), { config: loadConfig({}) });
    await expect(attempt).rejects.toThrow(ForbiddenError);
    await expect(attempt).rejects.toThrow('BINDERY_GIT_ALLOWED_HOSTS=127.0.0.1');
  });
});
