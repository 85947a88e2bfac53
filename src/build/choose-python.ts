import { RepositoryError } from '../errors.js';
import { InvalidSpecifierError, specifierAllows } from './python-specifier.js';
import { readTomlKeys } from './read-toml-keys.js';

/**
 * The Pythons a kernel may ask for when pyproject.toml rules out the base image's: repo2docker's
 * SUPPORTED_PYTHON_VERSION (repo2docker/buildpacks/conda/supported_python_version.py).
 */
export const KERNEL_PYTHON_VERSIONS: readonly string[] = [
  '3.8',
  '3.9',
  '3.10',
  '3.11',
  '3.12',
  '3.13',
  '3.14',
];

/** A Python a repository asks for, and the file and words that ask, for messages. */
export interface PythonWish {
  /** `X` or `X.Y`, as written, without any patch level. */
  version: string;
  /** What asks, for messages: `binder/runtime.txt`, `Pipfile's [requires] python_version`. */
  source: string;
}

/** Refuses Python 2, which Bindery's images cannot run. */
function refusePython2(wish: PythonWish): void {
  if (wish.version.split('.')[0] !== '2') return;
  throw new RepositoryError(
    `${wish.source} asks for Python ${wish.version}, which Bindery cannot provide; move the code to Python 3 or bring your own image with a Dockerfile.`,
  );
}

/**
 * The kernel's `X.Y` for a wish, or undefined for the base image's Python. A major version
 * alone (`python-3`) means the default Python, as repo2docker's `major_pythons` does.
 */
export function kernelPythonFor(
  wish: PythonWish | undefined,
  basePython: string,
): string | undefined {
  if (!wish) return undefined;
  refusePython2(wish);
  return wish.version.includes('.') && wish.version !== basePython ? wish.version : undefined;
}

/**
 * `X` or `X.Y` from the start of a Pipfile's `python_full_version` or `python_version`, as
 * repo2docker reads it (`\d+(\.\d+)*`, then major and minor only).
 */
const leadingVersion = (text: unknown) =>
  typeof text === 'string'
    ? /^\d+(\.\d+)*/.exec(text)?.[0].split('.').slice(0, 2).join('.')
    : undefined;

/**
 * The Python a Pipfile repository asks for, as repo2docker's pipfile buildpack reads it:
 * Pipfile.lock's `_meta.requires` first, then the Pipfile's `[requires]`, each
 * `python_full_version` before `python_version`.
 */
export function pipfilePython(
  pipfile: { path: string; text: string },
  lock?: { path: string; text: string },
): PythonWish | undefined {
  if (lock) {
    let requires: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(lock.text) as { _meta?: { requires?: Record<string, unknown> } };
      requires = parsed?._meta?.requires;
    } catch (error) {
      throw new RepositoryError(
        `${lock.path} is not valid JSON (${(error as Error).message}); regenerate it with pipenv lock.`,
      );
    }
    for (const key of ['python_full_version', 'python_version']) {
      const version = leadingVersion(requires?.[key]);
      if (version) return { version, source: `${lock.path}'s _meta.requires ${key}` };
    }
  }
  const { strings } = readTomlKeys(pipfile.text);
  for (const key of ['python_full_version', 'python_version']) {
    const version = leadingVersion(strings.get(`requires.${key}`));
    if (version) return { version, source: `${pipfile.path}'s [requires] ${key}` };
  }
  return undefined;
}

function allows(requires: string, version: string): boolean {
  try {
    return specifierAllows(requires, version);
  } catch (error) {
    if (!(error instanceof InvalidSpecifierError)) throw error;
    throw new RepositoryError(
      `pyproject.toml's requires-python "${requires}" is not a version specifier; write one such as ">=3.10".`,
    );
  }
}

/**
 * The kernel Python of a Python or R build, as repo2docker's python buildpack chooses it:
 * runtime.txt's `python-X.Y`, else the base image's Python; then pyproject.toml's
 * `[project] requires-python` is checked. A runtime.txt it excludes is an error; a default it
 * excludes gives way to the newest of KERNEL_PYTHON_VERSIONS it allows. Returns undefined for
 * the base image's Python, and a note when pyproject.toml made the choice.
 */
export function pythonBuildpackPython(
  wish: PythonWish | undefined,
  pyproject: string | undefined,
  basePython: string,
): { kernelPython?: string; note?: string } {
  const kernelPython = kernelPythonFor(wish, basePython);
  const version = kernelPython ?? basePython;
  const requires =
    pyproject === undefined
      ? undefined
      : readTomlKeys(pyproject).strings.get('project.requires-python');
  if (requires === undefined || allows(requires, version)) return { kernelPython };
  if (wish?.version.includes('.')) {
    throw new RepositoryError(
      `${wish.source} asks for python-${wish.version}, but pyproject.toml's requires-python "${requires}" excludes it; change one of them.`,
    );
  }
  const newest = KERNEL_PYTHON_VERSIONS.filter((candidate) => allows(requires, candidate)).at(-1);
  if (!newest) {
    throw new RepositoryError(
      `pyproject.toml's requires-python "${requires}" allows none of the Pythons Bindery can provide ` +
        `(${KERNEL_PYTHON_VERSIONS[0]} to ${KERNEL_PYTHON_VERSIONS.at(-1)}); widen it.`,
    );
  }
  return {
    kernelPython: newest === basePython ? undefined : newest,
    note: `Python ${newest} is used: pyproject.toml's requires-python "${requires}" excludes the base image's Python ${basePython}.`,
  };
}
