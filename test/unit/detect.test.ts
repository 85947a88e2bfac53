import { describe, expect, it } from '@jest/globals';
import {
  DEBIAN_R_VERSION,
  parseAptTxt,
  parseRuntime,
  planBuild,
  type BuildPlan,
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

/** A pyproject.toml that declares a package pip can build. */
const PACKAGE_PYPROJECT = [
  '[build-system]',
  'requires = ["setuptools>=61"]',
  'build-backend = "setuptools.build_meta"',
  '',
  '[project]',
  'name = "analysis"',
  'version = "0.1.0"',
  '',
].join('\n');

describe('planBuild precedence (first match wins, as in repo2docker)', () => {
  it('a Dockerfile beats everything and uses nothing else, not even apt.txt, postBuild or start', () => {
    expect(planBuild(binder(everything), facts)).toEqual({
      buildpack: 'dockerfile',
      dockerfile: 'binder/Dockerfile',
      aptPackages: [],
      notes: [],
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

  it('R comes before environment.yml, Pipfile and requirements.txt, keeps requirements.txt and says what it ignores', () => {
    const files: Files = {
      'runtime.txt': 'r-2024-01-31\n',
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
      notes: [
        'binder/environment.yml is ignored: binder/runtime.txt asks for R, and R builds install Python packages from requirements.txt only.',
        'binder/Pipfile is ignored: binder/runtime.txt asks for R, and R builds install Python packages from requirements.txt only.',
      ],
    });
  });

  it('environment.yml comes before Pipfile and requirements.txt, and the notes name each file it ignores', () => {
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
      environment: { path: 'binder/environment.yml', afterCopy: false },
      aptPackages: [],
      notes: [
        'binder/Pipfile is ignored: binder/environment.yml lists everything to install; pip packages go in its pip: section.',
        'binder/Pipfile.lock is ignored: binder/environment.yml lists everything to install; pip packages go in its pip: section.',
        'binder/requirements.txt is ignored: binder/environment.yml lists everything to install; pip packages go in its pip: section.',
      ],
    });
  });

  it('a Pipfile comes before requirements.txt and setup.py, which it names as ignored', () => {
    const plan = planBuild(
      root({ Pipfile: '[packages]\n', 'requirements.txt': 'numpy', 'setup.py': '' }),
      facts,
    );
    expect(plan).toEqual({
      buildpack: 'pipenv',
      aptPackages: [],
      pipenv: { pipfile: 'Pipfile', afterCopy: false },
      notes: [
        'requirements.txt is ignored: Pipfile lists everything to install.',
        'setup.py is ignored: Pipfile lists everything to install; add {path = ".", editable = true} to its [packages] to install the repository.',
      ],
    });
  });

  it('requirements.txt makes a Python build', () => {
    expect(planBuild(binder({ 'requirements.txt': 'numpy==1.26\n' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      requirements: { path: 'binder/requirements.txt', afterCopy: false },
      notes: [],
    });
  });

  it('an empty repository gets the default Python image with nothing to install', () => {
    expect(planBuild(root({}), facts)).toEqual({ buildpack: 'python', aptPackages: [], notes: [] });
  });
});

describe('planBuild python: installing the repository (repo2docker _is_python_package)', () => {
  it('installs a repository with setup.py, whatever it holds, and its requirements too', () => {
    expect(planBuild(root({ 'setup.py': '' }), facts).installRepo).toBe('setup.py');
    expect(planBuild(root({ 'requirements.txt': 'x', 'setup.py': '' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      requirements: { path: 'requirements.txt', afterCopy: false },
      installRepo: 'setup.py',
      notes: [],
    });
  });

  it('installs a pyproject.toml that declares both [project] and [build-system]', () => {
    expect(planBuild(root({ 'pyproject.toml': PACKAGE_PYPROJECT }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      installRepo: 'pyproject.toml',
      notes: [],
    });
  });

  it('counts tables declared by a sub-table header or a dotted key', () => {
    const pyproject = [
      '[build-system.x]',
      'y = 1',
      '[project.urls]',
      'Home = "https://example.org"',
    ].join('\n');
    expect(planBuild(root({ 'pyproject.toml': pyproject }), facts).installRepo).toBe(
      'pyproject.toml',
    );
    const dotted = 'project.name = "x"\nbuild-system.requires = ["hatchling"]\n';
    expect(planBuild(root({ 'pyproject.toml': dotted }), facts).installRepo).toBe('pyproject.toml');
  });

  it('does not install a pyproject.toml that only configures tools', () => {
    const tools = '[tool.black]\nline-length = 100\n\n[tool.ruff]\nselect = ["E"]\n';
    expect(planBuild(root({ 'pyproject.toml': tools }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      notes: [],
    });
    expect(planBuild(root({ 'pyproject.toml': '' }), facts).installRepo).toBeUndefined();
  });

  it('does not install [project] without [build-system], and says why', () => {
    const plan = planBuild(root({ 'pyproject.toml': '[project]\nname = "x"\n' }), facts);
    expect(plan.installRepo).toBeUndefined();
    expect(plan.notes).toEqual([
      'pyproject.toml is not installed: it has a [project] table but no [build-system] table, which repo2docker also requires; add one to install the repository with pip.',
    ]);
  });

  it('does not install [build-system] without [project]', () => {
    const plan = planBuild(root({ 'pyproject.toml': '[build-system]\nrequires = []\n' }), facts);
    expect(plan.installRepo).toBeUndefined();
    expect(plan.notes).toEqual([]);
  });

  it('is not fooled by a table name inside a string or a comment', () => {
    const text = [
      '# [build-system]',
      '[project]',
      'description = """',
      '[build-system]',
      '"""',
    ].join('\n');
    expect(planBuild(root({ 'pyproject.toml': text }), facts).installRepo).toBeUndefined();
  });

  it('prefers setup.py when both are there', () => {
    expect(
      planBuild(root({ 'setup.py': '', 'pyproject.toml': PACKAGE_PYPROJECT }), facts).installRepo,
    ).toBe('setup.py');
  });

  it('installs requirements that refer to the repository after the copy', () => {
    const plan = planBuild(binder({ 'requirements.txt': 'numpy\n-e .\n' }), facts);
    expect(plan.requirements).toEqual({ path: 'binder/requirements.txt', afterCopy: true });
  });
});

describe('planBuild python: which Python (runtime.txt)', () => {
  it("uses the base image's Python for runtime.txt naming it, with or without a patch level", () => {
    for (const runtime of [
      'python-3.11',
      'python-3.11.4\n',
      '  python-3.11  ',
      'python-3.11-2024-01-31',
    ]) {
      const plan = planBuild(root({ 'runtime.txt': runtime }), facts);
      expect(plan.buildpack).toBe('python');
      expect(plan.kernelPython).toBeUndefined();
    }
  });

  it('says a patch level is ignored', () => {
    expect(planBuild(binder({ 'runtime.txt': 'python-3.11.4' }), facts).notes).toEqual([
      'binder/runtime.txt names the patch level python-3.11.4, which is ignored: Bindery chooses Python by major and minor version.',
    ]);
  });

  it('reads python-3 alone as the default Python, as repo2docker does', () => {
    expect(planBuild(root({ 'runtime.txt': 'python-3\n' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      notes: [],
    });
  });

  it('asks for another Python for the kernel when runtime.txt names one', () => {
    expect(planBuild(binder({ 'runtime.txt': 'python-3.8\n' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      kernelPython: '3.8',
      notes: [],
    });
    expect(planBuild(root({ 'runtime.txt': 'python-3.12.1' }), facts).kernelPython).toBe('3.12');
  });

  it('compares against the version the base image reports', () => {
    expect(
      planBuild(root({ 'runtime.txt': 'python-3.12' }), { pythonVersion: '3.12' }).kernelPython,
    ).toBeUndefined();
    expect(
      planBuild(root({ 'runtime.txt': 'python-3.11' }), { pythonVersion: '3.12' }).kernelPython,
    ).toBe('3.11');
  });

  it.each(['python-2.7', 'python-2', 'python-2.7.18'])(
    'refuses %s, saying Python 2 cannot be had',
    (runtime) => {
      const error = repositoryError(() => planBuild(binder({ 'runtime.txt': runtime }), facts));
      expect(error.message).toMatch(
        /^binder\/runtime\.txt asks for Python 2(\.7)?, which Bindery cannot provide; move the code to Python 3 or bring your own image with a Dockerfile\.$/,
      );
    },
  );

  it('refuses a runtime.txt it cannot read, saying what to write', () => {
    const error = repositoryError(() => planBuild(binder({ 'runtime.txt': 'python3.11' }), facts));
    expect(error.message).toBe(
      'binder/runtime.txt says "python3.11"; write python-X.Y (for example python-3.11) or r-YYYY-MM-DD.',
    );
  });

  it('chooses the Python of an R build made by DESCRIPTION from runtime.txt too', () => {
    const plan = planBuild(
      root({ DESCRIPTION: 'Package: x\n', 'runtime.txt': 'python-3.10' }),
      facts,
    );
    expect(plan.buildpack).toBe('r');
    expect(plan.kernelPython).toBe('3.10');
  });
});

describe("planBuild python: pyproject.toml's requires-python", () => {
  const requiring = (specifier: string) =>
    `[project]\nname = "x"\nrequires-python = "${specifier}"\n`;

  it("keeps the base image's Python when requires-python allows it", () => {
    const plan = planBuild(root({ 'pyproject.toml': requiring('>=3.9') }), facts);
    expect(plan.kernelPython).toBeUndefined();
  });

  it('takes the newest Python requires-python allows when it excludes the default, and says so', () => {
    const plan = planBuild(root({ 'pyproject.toml': requiring('>=3.12,<3.14') }), facts);
    expect(plan.kernelPython).toBe('3.13');
    expect(plan.notes).toContain(
      `Python 3.13 is used: pyproject.toml's requires-python ">=3.12,<3.14" excludes the base image's Python 3.11.`,
    );
    expect(
      planBuild(root({ 'pyproject.toml': requiring('<3.11'), 'runtime.txt': 'python-3' }), facts)
        .kernelPython,
    ).toBe('3.10');
  });

  it('refuses a runtime.txt Python that requires-python excludes, as repo2docker does', () => {
    const error = repositoryError(() =>
      planBuild(
        root({ 'pyproject.toml': requiring('>=3.12'), 'runtime.txt': 'python-3.10' }),
        facts,
      ),
    );
    expect(error.message).toBe(
      `runtime.txt asks for python-3.10, but pyproject.toml's requires-python ">=3.12" excludes it; change one of them.`,
    );
  });

  it('refuses requires-python that no Python Bindery can give satisfies', () => {
    expect(
      repositoryError(() => planBuild(root({ 'pyproject.toml': requiring('<3') }), facts)).message,
    ).toBe(
      `pyproject.toml's requires-python "<3" allows none of the Pythons Bindery can provide (3.8 to 3.14); widen it.`,
    );
  });

  it('refuses requires-python that is not a version specifier', () => {
    expect(
      repositoryError(() => planBuild(root({ 'pyproject.toml': requiring('three') }), facts))
        .message,
    ).toBe(
      `pyproject.toml's requires-python "three" is not a version specifier; write one such as ">=3.10".`,
    );
  });

  it('leaves requires-python to pip in an R build with runtime.txt r-…, as repo2docker does', () => {
    const plan = planBuild(
      root({ 'runtime.txt': 'r-2024-01-31', 'pyproject.toml': requiring('>=3.12') }),
      facts,
    );
    expect(plan.kernelPython).toBeUndefined();
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

  it('refuses a Pipfile.lock that is not JSON, saying how to make it again', () => {
    expect(
      repositoryError(() => planBuild(root({ Pipfile: 'x', 'Pipfile.lock': '{"_meta": ' }), facts))
        .message,
    ).toMatch(/^Pipfile\.lock is not valid JSON \(.+\); regenerate it with pipenv lock\.$/);
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
    const lock = JSON.stringify({ default: { mypkg: { editable: true, path: '.' } } });
    expect(planBuild(root({ Pipfile: 'x', 'Pipfile.lock': lock }), facts).pipenv?.afterCopy).toBe(
      true,
    );
  });

  it('says nothing of setup.py when the Pipfile installs the repository', () => {
    const pipfile = '[packages]\nmypkg = {path = ".", editable = true}\n';
    expect(planBuild(root({ Pipfile: pipfile, 'setup.py': '' }), facts).notes).toEqual([]);
  });

  it("takes the kernel's Python from the Pipfile's [requires] python_version", () => {
    const pipfile = '[packages]\nrequests = "*"\n\n[requires]\npython_version = "3.9"\n';
    expect(planBuild(root({ Pipfile: pipfile }), facts)).toEqual({
      buildpack: 'pipenv',
      aptPackages: [],
      pipenv: { pipfile: 'Pipfile', afterCopy: false },
      kernelPython: '3.9',
      notes: [],
    });
    const same = '[requires]\npython_version = "3.11"\n';
    expect(planBuild(root({ Pipfile: same }), facts).kernelPython).toBeUndefined();
    const major = '[requires]\npython_version = "3"\n';
    expect(planBuild(root({ Pipfile: major }), facts).kernelPython).toBeUndefined();
  });

  it('reads python_full_version before python_version, and Pipfile.lock before the Pipfile', () => {
    const full = '[requires]\npython_version = "3.9"\npython_full_version = "3.10.4"\n';
    expect(planBuild(root({ Pipfile: full }), facts).kernelPython).toBe('3.10');
    const lock = JSON.stringify({ _meta: { requires: { python_version: '3.12' } } });
    expect(planBuild(root({ Pipfile: full, 'Pipfile.lock': lock }), facts).kernelPython).toBe(
      '3.12',
    );
  });

  it('ignores runtime.txt, whose Python the Pipfile decides, and says so', () => {
    const plan = planBuild(
      binder({ Pipfile: '[packages]\n', 'runtime.txt': 'python-3.12' }),
      facts,
    );
    expect(plan.kernelPython).toBeUndefined();
    expect(plan.notes).toEqual([
      "binder/runtime.txt is ignored: Pipfile builds take the Python from the Pipfile's [requires] python_version (or Pipfile.lock's).",
    ]);
  });

  it('refuses a Pipfile asking for Python 2', () => {
    expect(
      repositoryError(() =>
        planBuild(binder({ Pipfile: '[requires]\npython_version = "2.7"\n' }), facts),
      ).message,
    ).toBe(
      "binder/Pipfile's [requires] python_version asks for Python 2.7, which Bindery cannot provide; move the code to Python 3 or bring your own image with a Dockerfile.",
    );
  });
});

describe('planBuild R', () => {
  it('DESCRIPTION alone makes an R build that installs the package', () => {
    expect(planBuild(root({ DESCRIPTION: 'Package: x\n' }), facts)).toEqual({
      buildpack: 'r',
      aptPackages: [],
      r: { description: true },
      notes: [],
    });
  });

  it('runtime.txt r-DATE alone makes an R build', () => {
    expect(planBuild(binder({ 'runtime.txt': 'r-2023-05-01\n' }), facts)).toEqual({
      buildpack: 'r',
      aptPackages: [],
      r: { description: false },
      notes: [],
    });
  });

  it('install.R alone does not ask for R: the repository is a Python one, and a note says why', () => {
    expect(planBuild(binder({ 'install.R': 'install.packages("x")\n' }), facts)).toEqual({
      buildpack: 'python',
      aptPackages: [],
      notes: [
        'binder/install.R is ignored: R is installed only when runtime.txt says r-YYYY-MM-DD or the repository has a DESCRIPTION file, as in repo2docker.',
      ],
    });
  });

  it('runs install.R in an R build that runtime.txt or DESCRIPTION asks for', () => {
    expect(planBuild(binder({ 'install.R': 'x', 'runtime.txt': 'r-2024-01-31' }), facts).r).toEqual(
      { installR: 'binder/install.R', description: false },
    );
    expect(planBuild(root({ 'install.R': 'x', DESCRIPTION: 'Package: x' }), facts).r).toEqual({
      installR: 'install.R',
      description: true,
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
    expect(planBuild(root({ DESCRIPTION: 'x', 'setup.py': '' }), facts).installRepo).toBe(
      'setup.py',
    );
  });
});

describe('planBuild conda', () => {
  it('reads environment.yaml like environment.yml', () => {
    expect(planBuild(binder({ 'environment.yaml': 'dependencies: [numpy]\n' }), facts)).toEqual({
      buildpack: 'conda',
      aptPackages: [],
      environment: { path: 'binder/environment.yaml', afterCopy: false },
      notes: [],
    });
  });

  it('takes environment.yml when both are there, as repo2docker does, and says so', () => {
    const plan = planBuild(
      root({ 'environment.yml': 'dependencies: []', 'environment.yaml': 'dependencies: []' }),
      facts,
    );
    expect(plan.environment).toEqual({ path: 'environment.yml', afterCopy: false });
    expect(plan.notes).toEqual(['environment.yaml is ignored: environment.yml is read instead.']);
  });

  it('ignores runtime.txt, saying the environment file chooses the Python', () => {
    const plan = planBuild(binder({ 'environment.yml': 'x', 'runtime.txt': 'python-3.8' }), facts);
    expect(plan.kernelPython).toBeUndefined();
    expect(plan.notes).toEqual([
      'binder/runtime.txt is ignored: binder/environment.yml chooses the Python.',
    ]);
  });

  it('ignores even a runtime.txt asking for Python 2, which it never reads', () => {
    expect(
      planBuild(root({ 'environment.yml': 'x', 'runtime.txt': 'python-2.7' }), facts).buildpack,
    ).toBe('conda');
  });

  it('says setup.py and an installable pyproject.toml are not installed, and how to install them', () => {
    const plan = planBuild(
      root({ 'environment.yml': 'x', 'setup.py': '', 'pyproject.toml': PACKAGE_PYPROJECT }),
      facts,
    );
    expect(plan.notes).toEqual([
      'setup.py is ignored: environment.yml lists everything to install; add "-e ." to its pip: section to install the repository.',
      'pyproject.toml is ignored: environment.yml lists everything to install; add "-e ." to its pip: section to install the repository.',
    ]);
    expect(planBuild(root({ 'environment.yml': 'x', 'pyproject.toml': '' }), facts).notes).toEqual(
      [],
    );
  });

  it('says nothing of setup.py when the pip: section already points into the repository', () => {
    const environment = 'dependencies:\n  - pip:\n    - -e .\n';
    expect(
      planBuild(root({ 'environment.yml': environment, 'setup.py': '' }), facts).notes,
    ).toEqual([]);
  });

  it('installs after the copy when the pip: section refers to the repository', () => {
    const environment = [
      'name: analysis',
      'channels:',
      '  - conda-forge',
      'dependencies:',
      '  - python=3.11',
      '  - pip',
      '  - pip:',
      '    - -e .',
      '',
    ].join('\n');
    expect(planBuild(binder({ 'environment.yml': environment }), facts).environment).toEqual({
      path: 'binder/environment.yml',
      afterCopy: true,
    });
  });

  it.each([
    ['-r requirements.txt', true],
    ['./src/pkg', true],
    ['file:vendor/pkg.whl', true],
    ['.', true],
    ['numpy==1.26', false],
    ['git+https://github.com/org/repo.git@main#egg=repo', false],
  ])('a pip: entry %j makes afterCopy %s', (line, afterCopy) => {
    const environment = `dependencies:\n- numpy\n- pip:\n  - requests\n  - "${line}"\n`;
    expect(planBuild(root({ 'environment.yml': environment }), facts).environment?.afterCopy).toBe(
      afterCopy,
    );
  });

  it('reads the pip: section of a flow-style environment file', () => {
    const environment = 'dependencies: [python=3.10, {pip: [-e ., numpy]}]\n';
    expect(planBuild(root({ 'environment.yml': environment }), facts).environment?.afterCopy).toBe(
      true,
    );
  });

  it('is not fooled by a local reference outside the pip: section', () => {
    const environment = [
      '# pip: [-e .]',
      'name: -e .',
      'dependencies:',
      '  - ./not-pip  # a conda spec, which conda reads itself',
      '  - pip:',
      '      - numpy',
      'variables:',
      '  PIP: "-e ."',
    ].join('\n');
    expect(planBuild(root({ 'environment.yml': environment }), facts).environment?.afterCopy).toBe(
      false,
    );
  });
});

describe('planBuild add-ons for every buildpack but the Dockerfile one', () => {
  const addOns: Files = { 'apt.txt': 'curl\n', postBuild: '#!/bin/sh\n', start: '#!/bin/sh\n' };

  it.each<[string, Files]>([
    ['python', {}],
    ['pipenv', { Pipfile: 'x' }],
    ['conda', { 'environment.yml': 'x' }],
    ['r', { 'runtime.txt': 'r-2024-01-31' }],
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

describe('planBuild notes', () => {
  it('every plan has notes, empty when nothing was ignored', () => {
    const plans: BuildPlan[] = [
      planBuild(root({}), facts),
      planBuild(root({ Dockerfile: 'FROM x' }), facts),
      planBuild(root({ Pipfile: 'x' }), facts),
      planBuild(root({ 'environment.yml': 'x' }), facts),
      planBuild(root({ DESCRIPTION: 'x' }), facts),
    ];
    for (const plan of plans) expect(plan.notes).toEqual([]);
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
    ['python-3', { language: 'python', version: '3' }],
    ['python-3.10.12', { language: 'python', version: '3.10', patch: '12' }],
    ['python-3.10-2024-01-31', { language: 'python', version: '3.10' }],
    ['r-2024-01-31', { language: 'r' }],
    ['r-4.2-2024-01-31', { language: 'r', version: '4.2' }],
    ['r-4.2.3-2024-01-31', { language: 'r', version: '4.2' }],
  ])('%s', (text, runtime) => {
    expect(parseRuntime(`${text}\n`, 'runtime.txt')).toEqual(runtime);
  });

  it.each(['python', 'python-', 'python3.11', 'python-3.x', 'r-4.2', 'julia-1.9', ''])(
    'refuses %j',
    (text) => {
      expect(repositoryError(() => parseRuntime(text, 'runtime.txt')).message).toBe(
        `runtime.txt says "${text}"; write python-X.Y (for example python-3.11) or r-YYYY-MM-DD.`,
      );
    },
  );
});
