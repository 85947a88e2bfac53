import { RepositoryError } from '../errors.js';
import { pipfilePython, pythonBuildpackPython, kernelPythonFor } from './choose-python.js';
import {
  environmentNeedsRepository,
  pipfileNeedsRepository,
  requirementsNeedRepository,
} from './local-references.js';
import { readTomlKeys } from './read-toml-keys.js';
import { configPath, type ConfigFileName, type RepoConfig } from './repo-config.js';

export type Buildpack = 'dockerfile' | 'r' | 'conda' | 'pipenv' | 'python';

/** The R version Debian bookworm's r-base-core provides. */
export const DEBIAN_R_VERSION = '4.2';

/** What to install and run, decided from a repository's configuration as repo2docker would. */
export interface BuildPlan {
  buildpack: Buildpack;
  /** The repository's own Dockerfile (the `dockerfile` buildpack uses nothing else). */
  dockerfile?: string;
  /** Debian packages from apt.txt. */
  aptPackages: string[];
  /** requirements.txt; `afterCopy` when it refers to files in the repository. */
  requirements?: { path: string; afterCopy: boolean };
  /** `pip install .` after the copy: setup.py, or a pyproject.toml that declares [project] and [build-system]. */
  installRepo?: 'setup.py' | 'pyproject.toml';
  pipenv?: { pipfile: string; lockfile?: string; afterCopy: boolean };
  /** environment.yml or environment.yaml (path in the repo); afterCopy when its pip section refers to repository files (-e ., -r x.txt, ./pkg, file:). */
  environment?: { path: string; afterCopy: boolean };
  /** `X.Y` when the repository asks for a Python other than the base image's (runtime.txt python-X.Y, or Pipfile [requires] python_version); the builder then installs that Python for the kernel. Unset for the base Python. */
  kernelPython?: string;
  r?: { installR?: string; description: boolean };
  postBuild?: string;
  start?: string;
  /** Sentences for the build log about configuration that was read and deliberately ignored, e.g. "runtime.txt is ignored: environment.yml chooses the Python." */
  notes: string[];
}

/** Facts about the base image that detection checks the repository's wishes against. */
export interface BaseImageFacts {
  /** `major.minor` of the base image's python3. */
  pythonVersion: string;
}

/** runtime.txt, read: Python `X` or `X.Y` (with the patch level apart), or R with its date. */
export type Runtime =
  { language: 'python'; version: string; patch?: string } | { language: 'r'; version?: string };

/**
 * Parses runtime.txt: `python-X[.Y[.Z]]` or `r-[X.Y[.Z]-]YYYY-MM-DD`. repo2docker's parser
 * (`BuildPack.runtime`) also lets a date follow a Python version, which changes nothing.
 */
export function parseRuntime(text: string, path: string): Runtime {
  const value = text.trim();
  const python = /^python-(\d+)(?:\.(\d+)(?:\.(\d+))?)?(?:-\d{4}-\d{2}-\d{2})?$/.exec(value);
  if (python) {
    const [, major, minor, patch] = python;
    const version = minor === undefined ? major! : `${major}.${minor}`;
    return patch === undefined
      ? { language: 'python', version }
      : { language: 'python', version, patch };
  }
  const r = /^r-(?:(\d+)\.(\d+)(?:\.\d+)?-)?\d{4}-\d{2}-\d{2}$/.exec(value);
  if (r) return r[1] ? { language: 'r', version: `${r[1]}.${r[2]}` } : { language: 'r' };
  throw new RepositoryError(
    `${path} says "${value.slice(0, 80)}"; write python-X.Y (for example python-3.11) or r-YYYY-MM-DD.`,
  );
}

const APT_NAME = /^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+:~-]+)?$/;

/**
 * The packages apt.txt lists; comments and blank lines are skipped. repo2docker joins the lines
 * with spaces, so a line may name several packages, and so may ours.
 */
export function parseAptTxt(text: string, path = 'apt.txt'): string[] {
  const packages: string[] = [];
  text.split('\n').forEach((raw, index) => {
    for (const name of raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean)) {
      if (!APT_NAME.test(name)) {
        throw new RepositoryError(
          `${path} line ${index + 1}: "${name.slice(0, 80)}" is not a Debian package name.`,
        );
      }
      packages.push(name);
    }
  });
  return packages;
}

/**
 * Which of the tables that make a package pyproject.toml declares: repo2docker's
 * `_is_python_package` installs the repository only when there are both.
 */
function pyprojectTables(text: string) {
  const { tables } = readTomlKeys(text);
  return { project: tables.has('project'), buildSystem: tables.has('build-system') };
}

/**
 * Decides how to build a repository, first match wins as in repo2docker's buildpack order: a
 * Dockerfile; Julia (refused); R (runtime.txt r-YYYY-MM-DD, or DESCRIPTION); environment.yml
 * or environment.yaml; Pipfile; else Python (requirements.txt, setup.py, pyproject.toml,
 * runtime.txt python-…), which is also the default. apt.txt, postBuild and start apply to every
 * buildpack but the Dockerfile one. Configuration the chosen buildpack does not use is named
 * in `notes`, so the build log says why it had no effect.
 */
export function planBuild(config: RepoConfig, facts: BaseImageFacts): BuildPlan {
  const { files } = config;
  const path = (name: ConfigFileName) => configPath(config, name);
  if (files.Dockerfile !== undefined) {
    return { buildpack: 'dockerfile', dockerfile: path('Dockerfile'), aptPackages: [], notes: [] };
  }
  if (files['Project.toml'] !== undefined || files.REQUIRE !== undefined) {
    throw new RepositoryError(
      `${path(files['Project.toml'] !== undefined ? 'Project.toml' : 'REQUIRE')} asks for Julia, which this Bindery cannot install (Debian bookworm ships no Julia). Use a Dockerfile to bring your own.`,
    );
  }
  const runtime =
    files['runtime.txt'] === undefined
      ? undefined
      : parseRuntime(files['runtime.txt'], path('runtime.txt'));
  const notes: string[] = [];
  const plan: BuildPlan = {
    buildpack: 'python',
    aptPackages:
      files['apt.txt'] === undefined ? [] : parseAptTxt(files['apt.txt'], path('apt.txt')),
    notes,
  };
  if (files.postBuild !== undefined) plan.postBuild = path('postBuild');
  if (files.start !== undefined) plan.start = path('start');
  const ignore = (names: ConfigFileName[], why: string) => {
    for (const name of names)
      if (files[name] !== undefined) notes.push(`${path(name)} is ignored: ${why}`);
  };
  const pyproject =
    files['pyproject.toml'] === undefined ? undefined : pyprojectTables(files['pyproject.toml']);
  // The files that would make the repository a package `pip install .` installs.
  const packageFiles: ConfigFileName[] =
    pyproject?.project && pyproject.buildSystem ? ['setup.py', 'pyproject.toml'] : ['setup.py'];
  const environmentFile =
    files['environment.yml'] !== undefined
      ? ('environment.yml' as const)
      : files['environment.yaml'] !== undefined
        ? ('environment.yaml' as const)
        : undefined;

  // Python and R builds install requirements.txt and the repository as a package (R builds
  // derive from repo2docker's python buildpack), and take their Python from runtime.txt.
  const pythonParts = () => {
    if (files['requirements.txt'] !== undefined) {
      plan.requirements = {
        path: path('requirements.txt'),
        afterCopy: requirementsNeedRepository(files['requirements.txt']),
      };
    }
    if (files['setup.py'] !== undefined) plan.installRepo = 'setup.py';
    else if (pyproject?.project && pyproject.buildSystem) plan.installRepo = 'pyproject.toml';
    else if (pyproject?.project) {
      notes.push(
        'pyproject.toml is not installed: it has a [project] table but no [build-system] table, which repo2docker also requires; add one to install the repository with pip.',
      );
    }
    if (runtime?.language === 'r') return;
    const wish = runtime && { version: runtime.version, source: path('runtime.txt') };
    const chosen = pythonBuildpackPython(wish, files['pyproject.toml'], facts.pythonVersion);
    if (chosen.kernelPython) plan.kernelPython = chosen.kernelPython;
    if (chosen.note) notes.push(chosen.note);
    if (runtime?.patch !== undefined) {
      notes.push(
        `${path('runtime.txt')} names the patch level python-${runtime.version}.${runtime.patch}, which is ignored: Bindery chooses Python by major and minor version.`,
      );
    }
  };

  if (runtime?.language === 'r' || files.DESCRIPTION !== undefined) {
    if (runtime?.language === 'r' && runtime.version && runtime.version !== DEBIAN_R_VERSION) {
      throw new RepositoryError(
        `${path('runtime.txt')} asks for R ${runtime.version}, but this Bindery installs Debian's R ${DEBIAN_R_VERSION}. ` +
          `Change it to r-${DEBIAN_R_VERSION}-YYYY-MM-DD or r-YYYY-MM-DD.`,
      );
    }
    plan.buildpack = 'r';
    plan.r = { description: files.DESCRIPTION !== undefined };
    if (files['install.R'] !== undefined) plan.r.installR = path('install.R');
    pythonParts();
    const why =
      runtime?.language === 'r'
        ? `${path('runtime.txt')} asks for R`
        : 'DESCRIPTION makes this an R package';
    ignore(
      ['environment.yml', 'environment.yaml', 'Pipfile', 'Pipfile.lock'],
      `${why}, and R builds install Python packages from requirements.txt only.`,
    );
    return plan;
  }
  ignore(
    ['install.R'],
    'R is installed only when runtime.txt says r-YYYY-MM-DD or the repository has a DESCRIPTION file, as in repo2docker.',
  );

  if (environmentFile) {
    const environment = path(environmentFile);
    plan.buildpack = 'conda';
    plan.environment = {
      path: environment,
      afterCopy: environmentNeedsRepository(files[environmentFile]!),
    };
    ignore(['runtime.txt'], `${environment} chooses the Python.`);
    if (environmentFile === 'environment.yml')
      ignore(['environment.yaml'], `${environment} is read instead.`);
    ignore(
      ['Pipfile', 'Pipfile.lock', 'requirements.txt'],
      `${environment} lists everything to install; pip packages go in its pip: section.`,
    );
    // A pip: section that points into the repository most likely installs it already.
    if (!plan.environment.afterCopy) {
      ignore(
        packageFiles,
        `${environment} lists everything to install; add "-e ." to its pip: section to install the repository.`,
      );
    }
    return plan;
  }

  if (files.Pipfile !== undefined || files['Pipfile.lock'] !== undefined) {
    if (files.Pipfile === undefined) {
      throw new RepositoryError(
        `${path('Pipfile.lock')} has no Pipfile beside it; commit the Pipfile too.`,
      );
    }
    plan.buildpack = 'pipenv';
    plan.pipenv = {
      pipfile: path('Pipfile'),
      afterCopy:
        pipfileNeedsRepository(files.Pipfile) ||
        pipfileNeedsRepository(files['Pipfile.lock'] ?? ''),
    };
    if (files['Pipfile.lock'] !== undefined) plan.pipenv.lockfile = path('Pipfile.lock');
    const wish = pipfilePython(
      { path: path('Pipfile'), text: files.Pipfile },
      files['Pipfile.lock'] === undefined
        ? undefined
        : { path: path('Pipfile.lock'), text: files['Pipfile.lock'] },
    );
    const kernelPython = kernelPythonFor(wish, facts.pythonVersion);
    if (kernelPython) plan.kernelPython = kernelPython;
    ignore(
      ['runtime.txt'],
      `Pipfile builds take the Python from the Pipfile's [requires] python_version (or Pipfile.lock's).`,
    );
    ignore(['requirements.txt'], `${path('Pipfile')} lists everything to install.`);
    // A Pipfile that installs a path of the repository most likely installs the repository.
    if (!plan.pipenv.afterCopy) {
      ignore(
        packageFiles,
        `${path('Pipfile')} lists everything to install; add {path = ".", editable = true} to its [packages] to install the repository.`,
      );
    }
    return plan;
  }

  pythonParts();
  return plan;
}
