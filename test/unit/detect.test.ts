import { describe, expect, it } from '@jest/globals';
import {
  DEBIAN_R_VERSION,
  parseAptTxt,
  parseRuntime,
  planBuild,
  requirementsNeedRepository,
} from '../../src/build/detect.js';
import type { RepoConfig } from '../../src/build/repo-config.js';
import { RepositoryError } from '../../src/errors.js';

const facts = { pythonVersion: '3.11' };
type Files = RepoConfig['files'];

const root = (files: Files): RepoConfig => ({ configDir: '', files });
const binder = (files: Files): RepoConfig => ({ configDir: 'binder', files });

/** The RepositoryError `run` throws; fails the test when it throws nothing or something else. */
function repositoryError(run: () => unknown): RepositoryError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RepositoryError);
    expect((error as RepositoryError).status).toBe(422);
    expect((error as RepositoryError).retryable).toBe(false);
    return error as RepositoryError;
  }
  throw new Error('expected a RepositoryError, but nothing was thrown');
}

const everything: Files = {
  Dockerfile: 'FROM scratch\n',
  'Project.toml': '[deps]\n',
  'install.R': 'install.packages("x")\n',
  'environment.yml': 'dependencies: [python]\n',
  Pipfile: '[packages]\n',
  'requirements.txt': 'numpy\n',
  'runtime.txt': 'python-3.11\n',
  'apt.txt': 'curl\n',
  postBuild: '#!/bin/sh\n',
  start: '#!/bin/sh\nexec "$@"\n',
};

describe('planBuild precedence (first match wins, as in repo2docker)', () => {
  it('a Dockerfile beats everything and uses nothing else, not even apt.txt, postBuild or start', () => {
    expect(planBuild(binder(everything), facts)).toEqual({
      buildpack: 'dockerfile',
      dockerfile: 'binder/Dockerfile',
      aptPackages: [],
    });
  });

  it('a Dockerfile at the root is named without a directory', () => {
    expect(planBuild(root({ Dockerfile: 'FROM x\n' }), facts).dockerfile).toBe('Dockerfile');
  });

  it('Julia comes next, and is refused with a way out', () => {
    const rest: Files = { ...everything };
    delete rest.Dockerfile;
    const error = repositoryError(() => planBuild(binder(rest), facts));
    expect(error.message).toBe(
      'binder/Project.toml asks for Julia, which this Bindery cannot install (Debian bookworm ships no Julia). Use a Dockerfile to bring your own.',
    );
  });

  it('REQUIRE also asks for Julia', () => {
    expect(
      repositoryError(() => planBuild(root({ REQUIRE: 'julia 0.7\n' }), facts)).message,
    ).toMatch(/^REQUIRE asks for Julia, .*Use a Dockerfile to bring your own\.$/);
  });

  it('R comes before environment.yml, Pipfile and requirements.txt, and keeps requirements.txt', () => {
    const files: Files = {
      'install.R': 'install.packages("x")\n',
      'environment.yml': 'x',
      Pipfile: 'x',
      'requirements.txt': 'numpy\n',
    };
    expect(planBuild(binder(files), facts)).toEqual({
      buildpack: 'r',
      aptPackages: [],
      r: { installR: 'binder/install.R', description: false },
      requirements: { path: 'binder/requirements.txt', afterCopy: false },
    });
  });

  it('environment.yml comes before Pipfile and requirements.txt, which it ignores', () => {
    const plan = planBuild(
      binder({
        'environment.yml': 'x',
        Pipfile: 'x',
        'Pipfile.lock': '{}',
        'requirements.txt': 'numpy',
      }),
      facts,
    );
    expect(plan).toEqual({
      buildpack: 'conda',
      environment: 'binder/environment.yml',
      aptPackages: [],
    });
  });

  it('a Pipfile comes before requirements.txt, which it ignores', () => {
    const plan = planBuild(
      root({ Pipfile: '[packages]\n', 'requirements.txt': 'numpy', 'setup.py': '' }),
      facts,
    );
    expect(plan).toEqual({
      buildpack: 'pipenv',
      aptPackages: [],
      pipenv: { pipfile: 'Pipfile', afterCopy: false },
    });
  });

  it('requirements.txt makes a Python build', () => {
    expect(planBuild(binder({ 'requirements.txt': 'numpy==1.26\n' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      requirements: { path: 'binder/requirements.txt', afterCopy: false },
    });
  });

  it('an empty repository gets the default Python image with nothing to install', () => {
    expect(planBuild(root({}), facts)).toEqual({ buildpack: 'python', aptPackages: [] });
  });
});

describe('planBuild python', () => {
  it('installs the repository itself for setup.py or pyproject.toml, setup.py first', () => {
    expect(planBuild(root({ 'setup.py': '' }), facts).installRepo).toBe('setup.py');
    expect(planBuild(root({ 'pyproject.toml': '' }), facts).installRepo).toBe('pyproject.toml');
    expect(planBuild(root({ 'setup.py': '', 'pyproject.toml': '' }), facts).installRepo).toBe(
      'setup.py',
    );
    expect(planBuild(root({ 'requirements.txt': 'x', 'setup.py': '' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      requirements: { path: 'requirements.txt', afterCopy: false },
      installRepo: 'setup.py',
    });
  });

  it('installs requirements that refer to the repository after the copy', () => {
    const plan = planBuild(binder({ 'requirements.txt': 'numpy\n-e .\n' }), facts);
    expect(plan.requirements).toEqual({ path: 'binder/requirements.txt', afterCopy: true });
  });

  it("accepts runtime.txt naming the base image's Python, with or without a patch version", () => {
    for (const runtime of ['python-3.11', 'python-3.11.4\n', '  python-3.11  ']) {
      expect(planBuild(root({ 'runtime.txt': runtime }), facts)).toEqual({
        buildpack: 'python',
        aptPackages: [],
      });
    }
  });

  it('refuses runtime.txt asking for another Python, naming the one there is and the fix', () => {
    const error = repositoryError(() =>
      planBuild(binder({ 'runtime.txt': 'python-3.8\n' }), facts),
    );
    expect(error.message).toBe(
      "binder/runtime.txt asks for python-3.8, but this Bindery builds on Debian's Python 3.11, " +
        'the only version available here. Change binder/runtime.txt to python-3.11 or remove it.',
    );
  });

  it('checks the Python version for Pipfile builds too', () => {
    const error = repositoryError(() =>
      planBuild(root({ Pipfile: 'x', 'runtime.txt': 'python-3.12' }), facts),
    );
    expect(error.message).toContain('runtime.txt asks for python-3.12');
  });

  it('compares against the version the base image reports', () => {
    expect(() =>
      planBuild(root({ 'runtime.txt': 'python-3.12' }), { pythonVersion: '3.12' }),
    ).not.toThrow();
    expect(() =>
      planBuild(root({ 'runtime.txt': 'python-3.11' }), { pythonVersion: '3.12' }),
    ).toThrow("builds on Debian's Python 3.12");
  });

  it('refuses a runtime.txt it cannot read, saying what to write', () => {
    const error = repositoryError(() => planBuild(binder({ 'runtime.txt': 'python3.11' }), facts));
    expect(error.message).toBe(
      'binder/runtime.txt says "python3.11"; write python-X.Y (for example python-3.11) or r-YYYY-MM-DD.',
    );
  });
});

describe('planBuild pipenv', () => {
  it('uses Pipfile.lock beside the Pipfile', () => {
    expect(planBuild(binder({ Pipfile: 'x', 'Pipfile.lock': '{}' }), facts).pipenv).toEqual({
      pipfile: 'binder/Pipfile',
      lockfile: 'binder/Pipfile.lock',
      afterCopy: false,
    });
  });

  it('refuses Pipfile.lock without a Pipfile', () => {
    expect(repositoryError(() => planBuild(binder({ 'Pipfile.lock': '{}' }), facts)).message).toBe(
      'binder/Pipfile.lock has no Pipfile beside it; commit the Pipfile too.',
    );
  });

  it('installs after the copy when the Pipfile refers to a path in the repository', () => {
    const local = '[packages]\nmypkg = {path = ".", editable = true}\n';
    expect(planBuild(root({ Pipfile: local }), facts).pipenv?.afterCopy).toBe(true);
    expect(
      planBuild(root({ Pipfile: "[packages]\nsub = {path='./sub'}\n" }), facts).pipenv?.afterCopy,
    ).toBe(true);
    expect(
      planBuild(root({ Pipfile: '[packages]\nrequests = "*"\n' }), facts).pipenv?.afterCopy,
    ).toBe(false);
  });
});

describe('planBuild R', () => {
  it('DESCRIPTION alone makes an R build that installs the package', () => {
    expect(planBuild(root({ DESCRIPTION: 'Package: x\n' }), facts)).toEqual({
      buildpack: 'r',
      aptPackages: [],
      r: { description: true },
    });
  });

  it('runtime.txt r-DATE alone makes an R build', () => {
    expect(planBuild(binder({ 'runtime.txt': 'r-2023-05-01\n' }), facts)).toEqual({
      buildpack: 'r',
      aptPackages: [],
      r: { description: false },
    });
  });

  it(`accepts runtime.txt naming Debian's R ${DEBIAN_R_VERSION}`, () => {
    expect(
      planBuild(root({ 'runtime.txt': `r-${DEBIAN_R_VERSION}-2023-05-01` }), facts).buildpack,
    ).toBe('r');
    expect(
      planBuild(root({ 'runtime.txt': `r-${DEBIAN_R_VERSION}.1-2023-05-01` }), facts).buildpack,
    ).toBe('r');
  });

  it('refuses another R version, naming the one there is and how to write runtime.txt', () => {
    const error = repositoryError(() =>
      planBuild(binder({ 'runtime.txt': 'r-4.3-2023-05-01' }), facts),
    );
    expect(error.message).toBe(
      "binder/runtime.txt asks for R 4.3, but this Bindery installs Debian's R 4.2. " +
        'Change it to r-4.2-YYYY-MM-DD or r-YYYY-MM-DD.',
    );
  });

  it('runtime.txt r-… wins over environment.yml', () => {
    expect(
      planBuild(root({ 'runtime.txt': 'r-2023-05-01', 'environment.yml': 'x' }), facts).buildpack,
    ).toBe('r');
  });

  it('installs setup.py as well in an R build', () => {
    expect(planBuild(root({ 'install.R': 'x', 'setup.py': '' }), facts).installRepo).toBe(
      'setup.py',
    );
  });
});

describe('planBuild conda', () => {
  it('refuses runtime.txt python beside environment.yml, saying where to pin Python', () => {
    const error = repositoryError(() =>
      planBuild(binder({ 'environment.yml': 'x', 'runtime.txt': 'python-3.11' }), facts),
    );
    expect(error.message).toBe(
      'binder/runtime.txt and environment.yml both choose a Python; pin python in environment.yml and remove runtime.txt.',
    );
  });
});

describe('planBuild add-ons for every buildpack but the Dockerfile one', () => {
  const addOns: Files = { 'apt.txt': 'curl\n', postBuild: '#!/bin/sh\n', start: '#!/bin/sh\n' };

  it.each<[string, Files]>([
    ['python', {}],
    ['pipenv', { Pipfile: 'x' }],
    ['conda', { 'environment.yml': 'x' }],
    ['r', { 'install.R': 'x' }],
  ])('%s gets apt.txt, postBuild and start from the config directory', (buildpack, files) => {
    const plan = planBuild(binder({ ...files, ...addOns }), facts);
    expect(plan.buildpack).toBe(buildpack);
    expect(plan.aptPackages).toEqual(['curl']);
    expect(plan.postBuild).toBe('binder/postBuild');
    expect(plan.start).toBe('binder/start');
  });

  it('names root add-ons without a directory, and .binder ones with .binder/', () => {
    expect(planBuild(root({ postBuild: 'x' }), facts).postBuild).toBe('postBuild');
    expect(planBuild({ configDir: '.binder', files: { start: 'x' } }, facts).start).toBe(
      '.binder/start',
    );
  });

  it('reports a bad apt.txt with its path', () => {
    expect(
      repositoryError(() => planBuild(binder({ 'apt.txt': 'curl $(wget)\n' }), facts)).message,
    ).toBe('binder/apt.txt line 1: "$(wget)" is not a Debian package name.');
  });
});

describe('parseAptTxt', () => {
  it('reads one package a line, skipping comments, blank lines and surrounding space', () => {
    const text = [
      '# system libraries',
      'libgdal-dev',
      '',
      '   ',
      '  graphviz   # for the diagrams',
      'g++',
      'libc6:i386',
      'python3-numpy=1:1.24.2-1',
      'r-cran-ggplot2\r',
      '#curl',
    ].join('\n');
    expect(parseAptTxt(text)).toEqual([
      'libgdal-dev',
      'graphviz',
      'g++',
      'libc6:i386',
      'python3-numpy=1:1.24.2-1',
      'r-cran-ggplot2',
    ]);
  });

  it('reads several packages on one line, as repo2docker does', () => {
    expect(parseAptTxt('curl wget\n\tfiglet  # banner\n')).toEqual(['curl', 'wget', 'figlet']);
  });

  it('reads an empty file as no packages', () => {
    expect(parseAptTxt('')).toEqual([]);
    expect(parseAptTxt('# nothing yet\n\n')).toEqual([]);
  });

  it.each([
    ['curl; rm -rf /', 'curl;'],
    ['$(reboot)', '$(reboot)'],
    ['-o APT::Get::Foo=1', '-o'],
    ['Curl', 'Curl'],
    ['`id`', '`id`'],
  ])('refuses %j, naming the line and the word', (line, shown) => {
    const error = repositoryError(() => parseAptTxt(`git\n\n${line}\n`, 'binder/apt.txt'));
    expect(error.message).toBe(`binder/apt.txt line 3: "${shown}" is not a Debian package name.`);
  });

  it('shortens a very long bad name in the message', () => {
    const error = repositoryError(() => parseAptTxt('X'.repeat(200) + ' y'));
    expect(error.message).toBe(`apt.txt line 1: "${'X'.repeat(80)}" is not a Debian package name.`);
  });
});

describe('parseRuntime', () => {
  it.each([
    ['python-3.11', { language: 'python', version: '3.11' }],
    ['python-3.10.12', { language: 'python', version: '3.10' }],
    ['r-2024-01-31', { language: 'r' }],
    ['r-4.2-2024-01-31', { language: 'r', version: '4.2' }],
    ['r-4.2.3-2024-01-31', { language: 'r', version: '4.2' }],
  ])('%s', (text, runtime) => {
    expect(parseRuntime(`${text}\n`, 'runtime.txt')).toEqual(runtime);
  });

  it.each(['python', 'python-3', 'python3.11', 'r-4.2', 'julia-1.9', ''])('refuses %j', (text) => {
    expect(repositoryError(() => parseRuntime(text, 'runtime.txt')).message).toBe(
      `runtime.txt says "${text}"; write python-X.Y (for example python-3.11) or r-YYYY-MM-DD.`,
    );
  });
});

describe('requirementsNeedRepository', () => {
  it.each([
    '-e .',
    '--editable ./pkg',
    '-r other.txt',
    '--requirement=base.txt',
    '-c constraints.txt',
    '--constraint constraints.txt',
    '.',
    './src/mypkg',
    'file:./pkg',
    'numpy\n  -e .  \npandas',
  ])('%j refers to the repository', (text) => {
    expect(requirementsNeedRepository(text)).toBe(true);
  });

  it.each([
    'numpy',
    'numpy==1.26.4\npandas>=2',
    '# -e .',
    'numpy  # then -r other.txt',
    '--index-url https://mirror.example.org/simple\nnumpy',
    'requests[security] @ https://example.org/requests.whl',
    '',
  ])('%j does not', (text) => {
    expect(requirementsNeedRepository(text)).toBe(false);
  });
});
