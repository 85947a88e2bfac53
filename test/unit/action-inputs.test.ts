import { describe, expect, test } from '@jest/globals';
import { commitOf, launchUrlFor } from '../../action/src/launch-links.js';
import { readInputs } from '../../action/src/read-inputs.js';
import { specPath } from '../../action/src/spec-path.js';

describe('the action reads its inputs and writes specs as BinderHub does', () => {
  test('defaults come from the workflow: its repository, its commit, build only, 1800 s', () => {
    const inputs = readInputs({
      INPUT_SERVER: 'https://binder.example.org/',
      GITHUB_REPOSITORY: 'owner/repo',
      GITHUB_SHA: 'abc123',
    });
    expect(inputs).toEqual({
      server: 'https://binder.example.org',
      provider: 'gh',
      repository: 'owner/repo',
      ref: 'abc123',
      token: undefined,
      launch: false,
      timeoutSeconds: 1800,
    });
  });

  test('a wrong input is named with what to write instead', () => {
    expect(() => readInputs({})).toThrow('The input server is required');
    expect(() => readInputs({ INPUT_SERVER: 'http://x', INPUT_PROVIDER: 'svn' })).toThrow(
      'use one of gh, gl, gist, git',
    );
    expect(() =>
      readInputs({ INPUT_SERVER: 'http://x', INPUT_REPOSITORY: 'a/b', INPUT_LAUNCH: 'maybe' }),
    ).toThrow('use true or false');
  });

  test('gh keeps slashes, gl and git are one escaped part, the ref is escaped', () => {
    expect(specPath('gh', 'owner/repo', 'feature/x')).toBe('owner/repo/feature%2Fx');
    expect(specPath('gl', 'group/sub/project', 'main')).toBe('group%2Fsub%2Fproject/main');
    expect(specPath('git', 'https://host/r.git', 'HEAD')).toBe('https%3A%2F%2Fhost%2Fr.git/HEAD');
    expect(() => specPath('gh', 'just-a-name', 'main')).toThrow('for gh use OWNER/REPO');
  });

  test('the launch URL is pinned to the commit the server resolved', () => {
    const inputs = readInputs({
      INPUT_SERVER: 'http://b',
      INPUT_REPOSITORY: 'o/r',
      INPUT_REF: 'main',
    });
    const sha = commitOf({ phase: 'ready', imageName: 'registry:5000/prefix-o-2dr-1a2b:0123abc' });
    expect(sha).toBe('0123abc');
    expect(launchUrlFor(inputs, sha!)).toBe('http://b/v2/gh/o/r/0123abc');
    expect(
      commitOf({ phase: 'ready', image: 'x:1', binder_persistent_request: 'v2/gh/o/r/def456' }),
    ).toBe('def456');
  });
});
