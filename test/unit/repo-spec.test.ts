import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { InvalidInputError } from '../../src/errors.js';
import { parseGitUrl, parseSource, parseSpec, validateRef } from '../../src/repos/repo-spec.js';

/** The InvalidInputError `run` throws; fails the test when it throws nothing or something else. */
function invalidInput(run: () => unknown): InvalidInputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).status).toBe(400);
    return error as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError, but nothing was thrown');
}

describe('parseSpec gh', () => {
  it('names the GitHub repository, its ref and its BinderHub build slug', () => {
    expect(parseSpec('gh', 'jupyterhub/binder-examples/main')).toEqual({
      provider: 'gh',
      url: 'https://github.com/jupyterhub/binder-examples',
      ref: 'main',
      buildSlug: 'jupyterhub-binder-examples',
      repoLabel: 'gh/jupyterhub/binder-examples',
    });
  });

  it('keeps the slashes of a ref such as feature/x/y', () => {
    const spec = parseSpec('gh', 'owner/repo/feature/x/y');
    expect(spec.ref).toBe('feature/x/y');
    expect(spec.url).toBe('https://github.com/owner/repo');
  });

  it('decodes a URL-escaped ref', () => {
    expect(parseSpec('gh', 'owner/repo/release%2F1.0').ref).toBe('release/1.0');
  });

  it('strips .git from the repository name everywhere, so both spellings build one image', () => {
    const plain = parseSpec('gh', 'owner/repo/HEAD');
    const suffixed = parseSpec('gh', 'owner/repo.git/HEAD');
    expect(suffixed).toEqual(plain);
    expect(suffixed.url).toBe('https://github.com/owner/repo');
  });

  it('clones from GitHub Enterprise when given its URL', () => {
    const spec = parseSpec('gh', 'team/tool/v2', { githubUrl: 'https://ghe.example.org' });
    expect(spec.url).toBe('https://ghe.example.org/team/tool');
    expect(spec.repoLabel).toBe('gh/team/tool');
  });

  it.each(['owner/repo', 'owner', '', 'owner//main', '/repo/main', 'owner/repo/'])(
    'refuses the incomplete spec %j with its shape',
    (text) => {
      expect(invalidInput(() => parseSpec('gh', text)).message).toBe(
        `GitHub specs look like gh/OWNER/REPO/REF; "${text}" is not one.`,
      );
    },
  );

  it.each([
    ['own er/repo/main', 'own er/repo'],
    ['owner/re$po/main', 'owner/re$po'],
    ['owner/%2E%2E%2Fx/main', 'owner/%2E%2E%2Fx'],
  ])('refuses %j as no GitHub repository name', (text, name) => {
    expect(invalidInput(() => parseSpec('gh', text)).message).toBe(
      `"${name}" is not a GitHub repository name.`,
    );
  });

  it('refuses a ref git would read as an option', () => {
    expect(invalidInput(() => parseSpec('gh', 'owner/repo/--upload-pack=touch')).message).toContain(
      '"--upload-pack=touch" is not a valid git ref',
    );
  });

  it('refuses a ref that is not correctly URL-escaped', () => {
    expect(invalidInput(() => parseSpec('gh', 'owner/repo/%E0%A4%A')).message).toBe(
      'The ref "%E0%A4%A" is not correctly URL-escaped.',
    );
  });
});

describe('parseSpec gl', () => {
  it("unescapes the project path, clones the .git URL and uses BinderHub's slug", () => {
    expect(parseSpec('gl', 'jupyterhub%2Fbinder-examples/main')).toEqual({
      provider: 'gl',
      url: 'https://gitlab.com/jupyterhub/binder-examples.git',
      ref: 'main',
      // BinderHub: "-".join(p.replace("-", "_-") for p in namespace.split("/"))
      buildSlug: 'jupyterhub-binder_-examples',
      repoLabel: 'gl/jupyterhub/binder-examples',
    });
  });

  it('keeps GitLab subgroups and a ref with slashes', () => {
    const spec = parseSpec('gl', 'group%2Fsub%2Fproject/feature/one');
    expect(spec.url).toBe('https://gitlab.com/group/sub/project.git');
    expect(spec.ref).toBe('feature/one');
    expect(spec.buildSlug).toBe('group-sub-project');
  });

  it('gives a-b/c and a/b-c different build slugs', () => {
    expect(parseSpec('gl', 'a-b%2Fc/main').buildSlug).not.toBe(
      parseSpec('gl', 'a%2Fb-c/main').buildSlug,
    );
  });

  it('does not double a .git suffix in the clone URL', () => {
    expect(parseSpec('gl', 'group%2Fproject.git/main').url).toBe(
      'https://gitlab.com/group/project.git',
    );
  });

  it.each(['project/main', 'group%2Fproject', 'group%2Fproject/', '/main'])(
    'refuses %j with the shape of a GitLab spec',
    (text) => {
      expect(invalidInput(() => parseSpec('gl', text)).message).toBe(
        `GitLab specs look like gl/GROUP%2FPROJECT/REF (the project path URL-escaped); "${text}" is not one.`,
      );
    },
  );

  it('refuses a project path that is not correctly URL-escaped', () => {
    expect(invalidInput(() => parseSpec('gl', 'group%2project/main')).message).toBe(
      'The GitLab project "group%2project" is not correctly URL-escaped.',
    );
  });
});

describe('parseSpec gist', () => {
  it('builds the default branch when no ref is given, named by the gist id as BinderHub does', () => {
    expect(parseSpec('gist', 'someone/0123456789abcdef')).toEqual({
      provider: 'gist',
      url: 'https://gist.github.com/someone/0123456789abcdef.git',
      ref: 'HEAD',
      buildSlug: '0123456789abcdef',
      repoLabel: 'gist/someone/0123456789abcdef',
    });
  });

  it('takes a ref after the id', () => {
    expect(parseSpec('gist', 'someone/abc123/0f3e').ref).toBe('0f3e');
  });

  it.each(['someone', 'someone/', 'someone/not-hex/main', 'some.one/abc/main', '/abc/main'])(
    'refuses %j with the shape of a gist spec',
    (text) => {
      expect(invalidInput(() => parseSpec('gist', text)).message).toBe(
        `Gist specs look like gist/USER/GIST_ID[/REF]; "${text}" is not one.`,
      );
    },
  );
});

describe('parseSpec git', () => {
  it('unescapes the URL and keeps it as the build slug, as BinderHub does', () => {
    expect(parseSpec('git', 'https%3A%2F%2Fgit.example.org%2Fteam%2Frepo.git/v1.0')).toEqual({
      provider: 'git',
      url: 'https://git.example.org/team/repo.git',
      ref: 'v1.0',
      buildSlug: 'https://git.example.org/team/repo.git',
      repoLabel: 'git/https://git.example.org/team/repo.git',
    });
  });

  it('keeps the slashes of the ref: only the first slash ends the URL', () => {
    const spec = parseSpec('git', `${encodeURIComponent('http://example.org/r')}/feature/x`);
    expect(spec.url).toBe('http://example.org/r');
    expect(spec.ref).toBe('feature/x');
  });

  it('accepts git:// URLs', () => {
    expect(parseSpec('git', `${encodeURIComponent('git://example.org/r.git')}/HEAD`).url).toBe(
      'git://example.org/r.git',
    );
  });

  it.each(['https%3A%2F%2Fexample.org%2Fr', 'https%3A%2F%2Fexample.org%2Fr/', '/main'])(
    'refuses %j with the shape of a git spec',
    (text) => {
      expect(invalidInput(() => parseSpec('git', text)).message).toBe(
        `Git specs look like git/URL-ESCAPED-URL/REF; "${text}" is not one.`,
      );
    },
  );

  it("refuses file:// URLs, which would read the builder's own disk", () => {
    expect(invalidInput(() => parseSpec('git', 'file%3A%2F%2F%2Fetc/HEAD')).message).toBe(
      'file URLs are not supported; use an http, https or git URL.',
    );
  });

  it('refuses credentials in the URL without repeating them', () => {
    const message = invalidInput(() =>
      parseSpec('git', `${encodeURIComponent('https://me:s3cret@example.org/r.git')}/main`),
    ).message;
    expect(message).toBe(
      'Remove the credentials from example.org in the URL; Bindery builds public repositories only.',
    );
    expect(message).not.toContain('s3cret');
  });

  it('refuses an SSH address and shows the https one to use', () => {
    expect(
      invalidInput(() =>
        parseSpec('git', `${encodeURIComponent('git@github.com:owner/repo.git')}/main`),
      ).message,
    ).toBe(
      'git@github.com:owner/repo.git is an SSH address; Bindery clones public repositories over https, e.g. https://github.com/owner/repo.git.',
    );
  });

  it('refuses text that is no URL', () => {
    expect(invalidInput(() => parseSpec('git', 'not%20a%20url/main')).message).toBe(
      '"not a url" is not a URL; give a git URL such as https://host/owner/repo.',
    );
  });
});

describe('parseSpec providers', () => {
  it.each(['bb', 'zenodo', 'GH', ''])('refuses the unknown provider %j', (provider) => {
    expect(invalidInput(() => parseSpec(provider, 'owner/repo/main')).message).toBe(
      `"${provider}" is not a repository provider; use gh, gl, gist or git.`,
    );
  });
});

describe('parseGitUrl', () => {
  it.each(['ssh://git@example.org/r.git', 'ftp://example.org/r', 'ext::sh -c touch% /tmp/x'])(
    'refuses the scheme of %j',
    (text) => {
      expect(invalidInput(() => parseGitUrl(text)).message).toMatch(
        /^[a-z]+ URLs are not supported; use an http, https or git URL\.$/,
      );
    },
  );

  it('refuses a user name alone, as credentials', () => {
    expect(invalidInput(() => parseGitUrl('https://token@example.org/r')).message).toContain(
      'Remove the credentials from example.org',
    );
  });
});

describe('parseSource', () => {
  it('reads a relative path as a local directory named after its last part', () => {
    const spec = parseSource('test/fixtures/repos/default');
    const path = resolve('test/fixtures/repos/default');
    expect(spec).toEqual({
      provider: 'local',
      url: path,
      ref: 'local',
      buildSlug: 'local-default',
      repoLabel: `local/${path}`,
    });
  });

  it('reads an absolute path as itself, and / as root', () => {
    expect(parseSource('/srv/work/').url).toBe('/srv/work');
    expect(parseSource('/').buildSlug).toBe('local-root');
  });

  it('reads an https URL as a git repository with the given ref', () => {
    expect(parseSource('https://github.com/owner/repo', 'v1')).toEqual({
      provider: 'git',
      url: 'https://github.com/owner/repo',
      ref: 'v1',
      buildSlug: 'https://github.com/owner/repo',
      repoLabel: 'git/https://github.com/owner/repo',
    });
  });

  it('builds HEAD of a URL when no ref is given', () => {
    expect(parseSource('git://example.org/repo.git').ref).toBe('HEAD');
  });

  it('refuses an ssh address and points to https', () => {
    expect(invalidInput(() => parseSource('git@gitlab.com:group/project.git')).message).toBe(
      'git@gitlab.com:group/project.git is an SSH address; Bindery clones public repositories over https, e.g. https://gitlab.com/group/project.git.',
    );
  });

  it.each([
    ['file:///etc/passwd', 'file'],
    ['FILE:///etc', 'file'],
    ['ssh://git@example.org/r.git', 'ssh'],
    ['s3://bucket/repo', 's3'],
  ])('refuses %j instead of reading it as a path', (text, scheme) => {
    expect(invalidInput(() => parseSource(text)).message).toBe(
      `${scheme} URLs are not supported; use an http, https or git URL.`,
    );
  });

  it('refuses credentials in a URL', () => {
    const message = invalidInput(() =>
      parseSource('https://ghp_abc:x-oauth-basic@github.com/o/r'),
    ).message;
    expect(message).toContain('Remove the credentials from github.com');
    expect(message).not.toContain('ghp_abc');
  });

  it('checks the ref of a URL', () => {
    expect(
      invalidInput(() => parseSource('https://example.org/r', '-c core.sshCommand=x')).message,
    ).toContain('is not a valid git ref');
  });
});

describe('validateRef', () => {
  it.each([
    'main',
    'HEAD',
    'feature/login-form',
    'v1.2.3',
    'release_2024.01',
    '0123456789abcdef0123456789abcdef01234567',
    'v1.0^{}',
    'a'.repeat(255),
  ])('accepts %j', (ref) => {
    expect(validateRef(ref)).toBe(ref);
  });

  it.each([
    ['empty', ''],
    ['a leading dash (a git option)', '-b'],
    ['an option with a value', '--upload-pack=evil'],
    ['..', 'main..dev'],
    ['a parent path', '../main'],
    ['a space', 'my branch'],
    ['a tab', 'a\tb'],
    ['a newline', 'main\n--help'],
    ['a NUL', 'a\0b'],
    ['DEL', 'a\x7fb'],
    ['~', 'main~1'],
    ['^', 'main^'],
    [':', 'a:b'],
    ['?', 'a?'],
    ['*', 'feat*'],
    ['[', 'a[1]'],
    ['a backslash', 'a\\b'],
    ['256 characters', 'a'.repeat(256)],
  ])('refuses %s', (_what, ref) => {
    expect(invalidInput(() => validateRef(ref)).message).toBe(
      `"${ref}" is not a valid git ref; use a branch name, a tag, a full commit SHA or HEAD.`,
    );
  });
});

describe('parseSource with a ref for a directory', () => {
  it('refuses it: a directory is built as it is now', () => {
    expect(invalidInput(() => parseSource('test/fixtures/repos/default', 'main')).message).toBe(
      'A ref (main) applies to git URLs; test/fixtures/repos/default is a directory, built as its files are now.',
    );
  });
});
