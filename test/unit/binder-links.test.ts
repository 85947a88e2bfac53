import { describe, expect, it } from '@jest/globals';
import { binderLinks, specPath } from '../../src/repos/binder-links.js';
import { parseSpec } from '../../src/repos/repo-spec.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('binderLinks: the binder_* values of a ready event', () => {
  it('gives GitHub repositories BinderHub links, the request as asked and pinned', () => {
    const links = binderLinks(parseSpec('gh', 'owner/repo/main'), SHA, 'https://bindery.test');
    expect(links).toEqual({
      repoUrl: 'https://github.com/owner/repo',
      refUrl: `https://github.com/owner/repo/tree/${SHA}`,
      request: 'v2/gh/owner/repo/main',
      persistentRequest: `v2/gh/owner/repo/${SHA}`,
      launchHost: 'https://bindery.test/',
    });
  });

  it('escapes git URLs and GitLab namespaces in requests, as they arrive', () => {
    const git = binderLinks(
      parseSpec('git', 'https%3A%2F%2Fgit.test%2Fa%2Fb.git/v1.0'),
      SHA,
      'http://h/',
    );
    expect(git.request).toBe('v2/git/https%3A%2F%2Fgit.test%2Fa%2Fb.git/v1.0');
    expect(git.persistentRequest).toBe(`v2/git/https%3A%2F%2Fgit.test%2Fa%2Fb.git/${SHA}`);
    expect(git.refUrl).toBe('https://git.test/a/b.git');
    const gl = binderLinks(parseSpec('gl', 'group%2Fsub%2Fproject/main'), SHA, 'http://h');
    expect(gl.persistentRequest).toBe(`v2/gl/group%2Fsub%2Fproject/${SHA}`);
    expect(gl.refUrl).toBe(`https://gitlab.com/group/sub/project/tree/${SHA}`);
  });

  it('links a gist revision', () => {
    const links = binderLinks(parseSpec('gist', 'someone/abc123/HEAD'), SHA, 'http://h');
    expect(links.refUrl).toBe(`https://gist.github.com/someone/abc123/${SHA}`);
    expect(specPath(parseSpec('gist', 'someone/abc123'), 'x y')).toBe('someone/abc123/x%20y');
  });
});
