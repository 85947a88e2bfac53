import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { ForbiddenError, InvalidInputError } from '../../src/errors.js';
import { gitlabProvider } from '../../src/repos/providers/gitlab-provider.js';

const SHA = 'e'.repeat(40);

describe('gl specs', () => {
  it.each([
    [
      'group%2Fproject/main',
      'https://gitlab.com/group/project.git',
      'main',
      'group-project',
      'gl/group/project',
    ],
    [
      'group%2Fsub%2Fproject/feature/x',
      'https://gitlab.com/group/sub/project.git',
      'feature/x',
      'group-sub-project',
      'gl/group/sub/project',
    ],
    ['a-b%2Fc/main', 'https://gitlab.com/a-b/c.git', 'main', 'a_-b-c', 'gl/a-b/c'],
    ['a%2Fb-c/main', 'https://gitlab.com/a/b-c.git', 'main', 'a-b_-c', 'gl/a/b-c'],
    ['g%2Fp.git/v1', 'https://gitlab.com/g/p.git', 'v1', 'g-p.git', 'gl/g/p.git'],
  ])('%s is %s at %s, slug %s', (spec, url, ref, buildSlug, repoLabel) => {
    expect(gitlabProvider.parseSpec(spec)).toEqual({
      provider: 'gl',
      url,
      ref,
      buildSlug,
      repoLabel,
    });
  });

  it.each([
    [
      'project/main',
      'GitLab specs look like gl/GROUP%2FPROJECT/REF (the project path URL-escaped); "project/main" is not one.',
    ],
    [
      'group%2Fproject',
      'GitLab specs look like gl/GROUP%2FPROJECT/REF (the project path URL-escaped); "group%2Fproject" is not one.',
    ],
    [
      'group%2Fproj%E0%A4%A/main',
      'The GitLab project "group%2Fproj%E0%A4%A" is not correctly URL-escaped.',
    ],
  ])('refuses %s with a sentence', (spec, sentence) => {
    expect(() => gitlabProvider.parseSpec(spec)).toThrow(InvalidInputError);
    expect(() => gitlabProvider.parseSpec(spec)).toThrow(sentence);
  });
});

describe('gl links and ban subjects', () => {
  const spec = gitlabProvider.parseSpec('group%2Fsub%2Fproject/feature%2Fx');

  it('links the project and the commit as GitLab shows them', () => {
    expect(gitlabProvider.repoUrl(spec)).toBe('https://gitlab.com/group/sub/project');
    expect(gitlabProvider.refUrl(spec, SHA)).toBe(
      `https://gitlab.com/group/sub/project/tree/${SHA}`,
    );
  });

  it('writes its spec path with the project path escaped, as requests arrive', () => {
    expect(gitlabProvider.specPath(spec, 'feature/x')).toBe('group%2Fsub%2Fproject/feature%2Fx');
  });

  it('is matched decoded, and escaped as its spec paths are', () => {
    expect(gitlabProvider.banSubjects(spec)).toEqual([
      'gl/group/sub/project/feature/x',
      'gl/group%2Fsub%2Fproject/feature%2Fx',
    ]);
  });
});

describe('gl refs', () => {
  const config = loadConfig({});

  it('takes a full commit SHA as it is, once the host is checked', async () => {
    const spec = gitlabProvider.parseSpec(`group%2Fproject/${SHA}`);
    const lookups: string[] = [];
    const lookup = async (host: string) => (lookups.push(host), [{ address: '172.65.251.78' }]);
    await expect(gitlabProvider.resolveRef(spec, { config, lookup })).resolves.toBe(SHA);
    expect(lookups).toEqual(['gitlab.com']);
  });

  it('refuses gitlab.com when it resolves to a private address', async () => {
    const spec = gitlabProvider.parseSpec('group%2Fproject/main');
    const lookup = async () => [{ address: '192.168.1.9' }];
    await expect(gitlabProvider.resolveRef(spec, { config, lookup })).rejects.toThrow(
      ForbiddenError,
    );
  });
});
