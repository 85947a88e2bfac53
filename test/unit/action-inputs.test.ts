import { describe, expect, test } from '@jest/globals';
import { commitOf, launchUrlFor } from '../../action/src/launch-links.js';
import { readInputs } from '../../action/src/read-inputs.js';
import { specPath } from '../../action/src/spec-path.js';
import { readActionMetadata, runnerEnv } from '../helpers/action-runner.js';

describe('the action reads its inputs and writes specs as BinderHub does', () => {
  test("defaults come from action.yml as the runner fills them: the workflow's repository and commit, build only, 1800 s", () => {
    const inputs = readInputs(
      runnerEnv(
        { server: 'https://binder.example.org/' },
        { repository: 'owner/repo', sha: 'abc123' },
      ),
    );
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

  test('every input action.yml declares is read, and changes what the action does', () => {
    const github = { repository: 'owner/repo', sha: 'abc123' };
    const other: Record<string, string> = {
      server: 'http://other.example',
      provider: 'gl',
      repository: 'group/project',
      ref: 'feature',
      token: 'secret',
      launch: 'true',
      timeout: '5',
    };
    expect(Object.keys(readActionMetadata().inputs).sort()).toEqual(Object.keys(other).sort());
    const baseline = readInputs(runnerEnv({ server: 'https://binder.example.org' }, github));
    for (const [name, value] of Object.entries(other)) {
      const changed = readInputs(
        runnerEnv({ server: 'https://binder.example.org', [name]: value }, github),
      );
      expect({ name, changed: changed }).not.toEqual({ name, changed: baseline });
    }
  });

  test('a step cannot give an input action.yml does not declare', () => {
    expect(() =>
      runnerEnv({ server: 'http://x', build_only: 'true' }, { repository: 'o/r', sha: 'a' }),
    ).toThrow('action.yml declares no input build_only');
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
