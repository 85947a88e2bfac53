import { RepositoryError } from '../errors.js';
import { configPath, type RepoConfig } from './repo-config.js';

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
  /** `pip install .` after the copy, for setup.py / pyproject.toml at the root. */
  installRepo?: string;
  pipenv?: { pipfile: string; lockfile?: string; afterCopy: boolean };
  /** environment.yml, rendered with micromamba. */
  environment?: string;
  r?: { installR?: string; description: boolean };
  postBuild?: string;
  start?: string;
}

/** Facts about the base image that detection checks the repository's wishes against. */
export interface BaseImageFacts {
  /** `major.minor` of the base image's python3. */
  pythonVersion: string;
}

type Runtime = { language: 'python'; version: string } | { language: 'r'; version?: string };

/** Parses runtime.txt: `python-X.Y[.Z]`, `r-YYYY-MM-DD` or `r-X.Y[.Z]-YYYY-MM-DD`. */
export function parseRuntime(text: string, path: string): Runtime {
  const value = text.trim();
  const python = /^python-(\d+)\.(\d+)(?:\.\d+)?$/.exec(value);
  if (python) return { language: 'python', version: `${python[1]}.${python[2]}` };
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

/** repo2docker installs requirements after the copy when they refer to files of the repository. */
export function requirementsNeedRepository(text: string): boolean {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .some(
      (line) =>
        /^(-e|--editable|-r|--requirement|-c|--constraint)\b/.test(line) ||
        /^(\.|\/|file:)/.test(line),
    );
}

function pipfileNeedsRepository(text: string): boolean {
  return /\bpath\s*=\s*["']\./.test(text);
}

function checkPythonVersion(
  runtime: Runtime | undefined,
  facts: BaseImageFacts,
  path: string,
): void {
  if (runtime?.language !== 'python' || runtime.version === facts.pythonVersion) return;
  throw new RepositoryError(
    `${path} asks for python-${runtime.version}, but this Bindery builds on Debian's Python ${facts.pythonVersion}, ` +
      `the only version available here. Change ${path} to python-${facts.pythonVersion} or remove it.`,
  );
}

/**
 * Decides how to build a repository, first match wins as in repo2docker: a Dockerfile; R
 * (runtime.txt r-…, install.R or DESCRIPTION); environment.yml; Pipfile; Python
 * (requirements.txt, setup.py, pyproject.toml, runtime.txt python-…); else the default
 * Python image. apt.txt, postBuild and start apply to every buildpack but the Dockerfile one.
 */
export function planBuild(config: RepoConfig, facts: BaseImageFacts): BuildPlan {
  const { files } = config;
  const path = (name: Parameters<typeof configPath>[1]) => configPath(config, name);
  if (files.Dockerfile !== undefined) {
    return { buildpack: 'dockerfile', dockerfile: path('Dockerfile'), aptPackages: [] };
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
  const plan: BuildPlan = {
    buildpack: 'python',
    aptPackages:
      files['apt.txt'] === undefined ? [] : parseAptTxt(files['apt.txt'], path('apt.txt')),
  };
  if (files.postBuild !== undefined) plan.postBuild = path('postBuild');
  if (files.start !== undefined) plan.start = path('start');

  const pythonParts = () => {
    if (files['requirements.txt'] !== undefined) {
      plan.requirements = {
        path: path('requirements.txt'),
        afterCopy: requirementsNeedRepository(files['requirements.txt']),
      };
    }
    if (files['setup.py'] !== undefined) plan.installRepo = 'setup.py';
    else if (files['pyproject.toml'] !== undefined) plan.installRepo = 'pyproject.toml';
  };

  if (
    runtime?.language === 'r' ||
    files['install.R'] !== undefined ||
    files.DESCRIPTION !== undefined
  ) {
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
    return plan;
  }
  if (files['environment.yml'] !== undefined) {
    if (runtime?.language === 'python') {
      throw new RepositoryError(
        `${path('runtime.txt')} and environment.yml both choose a Python; pin python in environment.yml and remove runtime.txt.`,
      );
    }
    plan.buildpack = 'conda';
    plan.environment = path('environment.yml');
    return plan;
  }
  checkPythonVersion(runtime, facts, path('runtime.txt'));
  if (files.Pipfile !== undefined || files['Pipfile.lock'] !== undefined) {
    plan.buildpack = 'pipenv';
    plan.pipenv = {
      pipfile: path('Pipfile'),
      afterCopy:
        pipfileNeedsRepository(files.Pipfile ?? '') ||
        pipfileNeedsRepository(files['Pipfile.lock'] ?? ''),
    };
    if (files['Pipfile.lock'] !== undefined) plan.pipenv.lockfile = path('Pipfile.lock');
    if (files.Pipfile === undefined) {
      throw new RepositoryError(
        `${path('Pipfile.lock')} has no Pipfile beside it; commit the Pipfile too.`,
      );
    }
    return plan;
  }
  pythonParts();
  return plan;
}
