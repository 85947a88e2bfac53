import { describe, expect, it } from '@jest/globals';
import {
  environmentNeedsRepository,
  isLocalPipRequirement,
  pipfileNeedsRepository,
  requirementsNeedRepository,
} from '../../src/build/local-references.js';

describe('requirementsNeedRepository', () => {
  it.each([
    '-e .',
    '--editable ./pkg',
    '--editable=./pkg',
    '-r other.txt',
    '-rother.txt',
    '--requirement=base.txt',
    '-c constraints.txt',
    '--constraint constraints.txt',
    '.',
    '..',
    './src/mypkg',
    '.[dev]',
    'file:./pkg',
    'mypkg @ file:///home/jovyan/mypkg',
    'git+file://../local/repo',
    '/home/jovyan/pkg',
    'numpy\n  -e .  \npandas',
    'numpy\r\n-e .\r\n',
  ])('%j refers to the repository', (text) => {
    expect(requirementsNeedRepository(text)).toBe(true);
  });

  it.each([
    'numpy',
    'numpy==1.26.4\npandas>=2',
    '# -e .',
    'numpy  # then -r other.txt',
    '--index-url https://mirror.example.org/simple\nnumpy',
    '--pre',
    '--no-binary',
    '-e git+https://github.com/org/repo.git#egg=repo',
    'requests[security] @ https://example.org/requests.whl',
    'profile-tools',
    '',
  ])('%j does not', (text) => {
    expect(requirementsNeedRepository(text)).toBe(false);
  });

  it('judges one line at a time', () => {
    expect(isLocalPipRequirement('-e .')).toBe(true);
    expect(isLocalPipRequirement('numpy')).toBe(false);
  });
});

describe('pipfileNeedsRepository', () => {
  it.each([
    '[packages]\nmypkg = {path = ".", editable = true}\n',
    "[packages]\nsub = {path='./sub'}\n",
    '[packages]\nwheel = {file = "./dist/x.whl"}\n',
    JSON.stringify({ default: { mypkg: { editable: true, path: '.' } } }, null, 4),
  ])('%j installs a path of the repository', (text) => {
    expect(pipfileNeedsRepository(text)).toBe(true);
  });

  it.each([
    '[packages]\nrequests = "*"\n',
    '[packages]\nlib = {file = "https://example.org/lib.zip"}\n',
    '[packages]\nmypath = "*"\n',
  ])('%j does not', (text) => {
    expect(pipfileNeedsRepository(text)).toBe(false);
  });
});

describe('environmentNeedsRepository', () => {
  it('finds a local reference in the pip: section of dependencies', () => {
    expect(environmentNeedsRepository('dependencies:\n  - python\n  - pip:\n    - -e .\n')).toBe(
      true,
    );
  });

  it('reads an indentless pip: list and quoted entries', () => {
    expect(environmentNeedsRepository("dependencies:\n- pip:\n  - '-r requirements.txt'\n")).toBe(
      true,
    );
  });

  it('counts only the last pip: entry, as repo2docker does', () => {
    const text = 'dependencies:\n  - pip: [-e .]\n  - pip: [numpy]\n';
    expect(environmentNeedsRepository(text)).toBe(false);
  });

  it('skips an empty pip: entry, as Python truthiness does', () => {
    const text = 'dependencies:\n  - pip: [-e .]\n  - pip: []\n';
    expect(environmentNeedsRepository(text)).toBe(true);
  });

  it.each([
    ['an empty file', ''],
    ['a scalar', 'x'],
    ['no dependencies', 'name: x\n'],
    ['dependencies that are not a list', 'dependencies: numpy\n'],
    ['a pip: entry that is not a list', 'dependencies:\n  - pip: -e .\n'],
    ['local references outside pip:', 'dependencies:\n  - ./conda-pkg\n'],
  ])('answers no for %s', (_name, text) => {
    expect(environmentNeedsRepository(text)).toBe(false);
  });

  it('answers yes, the safe answer, for YAML it does not follow', () => {
    const aliased = 'x: &pip [-e .]\ndependencies:\n  - pip: *pip\n';
    expect(environmentNeedsRepository(aliased)).toBe(true);
  });
});
