import { readYaml, UnsupportedYamlError, type YamlValue } from './read-yaml.js';

/**
 * Whether one pip requirement line refers to files of the repository, so it can only be
 * installed once the repository is in the image. This follows repo2docker's
 * `is_local_pip_requirement` (repo2docker/utils.py): `-r`/`-c` and their long forms always do;
 * `-e x`, `--flag=x` are judged by `x`; a `file://` URL or a path starting with `.` does. Bindery
 * also counts `file:` without slashes and absolute paths, which cannot be installed before the
 * copy either; installing after the copy is always correct, only less cached.
 */
export function isLocalPipRequirement(raw: string): boolean {
  let line = raw.split('#', 1)[0]!.trim();
  if (!line) return false;
  if (/^(-r|-c|--requirement|--constraint)/.test(line)) return true;
  if (line.startsWith('--pre')) return false;
  if (line.startsWith('--') && line.includes('=')) line = line.slice(line.indexOf('=') + 1);
  if (line.startsWith('-')) {
    // `-e ./pkg`: the flag's argument is what may be local; a flag alone refers to nothing.
    const argument = /^\S+\s+(.+)$/.exec(line);
    if (!argument) return false;
    line = argument[1]!;
  }
  if (/(^|[\s@=])file:/.test(line)) return true;
  // `git+file://../x` was caught above; `git+https://host/x` names a host, not a path.
  const path = line.includes('://') ? line.slice(line.indexOf('://') + 3) : line;
  return path.startsWith('.') || path.startsWith('/');
}

/** repo2docker installs requirements after the copy when they refer to files in the repository. */
export function requirementsNeedRepository(text: string): boolean {
  return text.split(/\r?\n/).some(isLocalPipRequirement);
}

/** Whether a Pipfile or Pipfile.lock installs a path of the repository (`{path = "."}`). */
export function pipfileNeedsRepository(text: string): boolean {
  return /["']?\b(?:path|file)["']?\s*[=:]\s*["'](?:\.|\/|file:)/.test(text);
}

const isMapping = (value: YamlValue | undefined): value is { [key: string]: YamlValue } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Whether an environment file's `pip:` section refers to files of the repository (`-e .`,
 * `-r requirements.txt`, `./pkg`, `file:`), as repo2docker's conda buildpack decides in
 * `_should_preassemble_env`: the last `pip:` entry of `dependencies` that is a list counts. A
 * file this reader cannot follow counts as referring to the repository, the answer that is
 * never wrong, only less cached.
 */
export function environmentNeedsRepository(text: string): boolean {
  let document: YamlValue;
  try {
    document = readYaml(text);
  } catch (error) {
    if (error instanceof UnsupportedYamlError) return true;
    throw error;
  }
  const dependencies = isMapping(document) ? document.dependencies : undefined;
  if (!Array.isArray(dependencies)) return false;
  let pip: YamlValue = null;
  for (const dependency of dependencies) {
    const entry = isMapping(dependency) ? dependency.pip : undefined;
    // Python's truthiness, as in `dep.get("pip")`: an empty list, mapping or string does not count.
    const empty = isMapping(entry) ? Object.keys(entry).length === 0 : !entry?.length;
    if (entry !== undefined && !empty) pip = entry;
  }
  return Array.isArray(pip) && pip.some((line) => isLocalPipRequirement(String(line ?? '')));
}
