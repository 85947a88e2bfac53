import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { RepositoryError } from '../errors.js';

/** Files read from the config directory (binder/, .binder/ or the root), as repo2docker does. */
export const CONFIG_FILES = [
  'Dockerfile',
  'environment.yml',
  'Pipfile',
  'Pipfile.lock',
  'requirements.txt',
  'runtime.txt',
  'apt.txt',
  'postBuild',
  'start',
  'install.R',
  'Project.toml',
  'REQUIRE',
] as const;

/** Files that count only at the repository root, and only when there is no config directory. */
export const ROOT_ONLY_FILES = ['setup.py', 'pyproject.toml', 'DESCRIPTION'] as const;

export type ConfigFileName = (typeof CONFIG_FILES)[number] | (typeof ROOT_ONLY_FILES)[number];

/** Largest config file Bindery reads; anything bigger is a mistake, not a configuration. */
export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

/** The configuration a repository declares, read and checked, before anything is built. */
export interface RepoConfig {
  /** `binder`, `.binder` or `` (the root). */
  configDir: string;
  /** Each present config file's text, by bare name. */
  files: Partial<Record<ConfigFileName, string>>;
}

/** Path of a config file inside the repository, for COPY lines and messages. */
export function configPath(config: RepoConfig, name: ConfigFileName): string {
  const rootOnly = (ROOT_ONLY_FILES as readonly string[]).includes(name);
  return rootOnly || !config.configDir ? name : `${config.configDir}/${name}`;
}

async function isDirectory(path: string): Promise<boolean> {
  return lstat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

async function readConfigFile(repoDir: string, path: string): Promise<string | undefined> {
  const full = join(repoDir, path);
  const info = await lstat(full).catch(() => undefined);
  if (!info) return undefined;
  if (info.isSymbolicLink()) {
    // A link may point anywhere on the builder's disk; only links inside the repository count.
    const target = await realpath(full).catch(() => undefined);
    const root = await realpath(repoDir);
    // realpath gives a normalised absolute path, so a prefix test is enough (and a file
    // named `..notes` inside the repository is still inside it).
    if (!target || !target.startsWith(root + sep)) {
      throw new RepositoryError(
        `${path} is a symbolic link that leads outside the repository; replace it with the file itself.`,
      );
    }
    return readConfigFile(repoDir, relative(root, target));
  }
  if (info.isDirectory())
    throw new RepositoryError(`${path} is a directory; Bindery expects a file there.`);
  if (!info.isFile()) throw new RepositoryError(`${path} is not a regular file.`);
  if (info.size > CONFIG_FILE_MAX_BYTES) {
    throw new RepositoryError(
      `${path} is ${(info.size / 2 ** 20).toFixed(1)} MiB; configuration files must be under 1 MiB.`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(full);
  } catch (error) {
    throw new RepositoryError(
      `${path} cannot be read (${(error as NodeJS.ErrnoException).code}); check its permissions.`,
    );
  }
  // A fatal decoder refuses invalid UTF-8 but keeps a U+FFFD the file really contains.
  const text = bytes.includes(0) ? undefined : decodeUtf8(bytes);
  if (text === undefined) throw new RepositoryError(`${path} is not a UTF-8 text file.`);
  return text;
}

/**
 * Reads the repository's configuration from `repoDir`: from `binder/` or `.binder/` when one
 * exists (both is an error), else from the root. Every file is checked for size and type.
 */
export async function readRepoConfig(repoDir: string): Promise<RepoConfig> {
  // The repository itself may be named through a link (`bindery build ./link`); its own
  // binder/ and files may not, which isDirectory and readConfigFile check with lstat.
  if (
    !(await stat(repoDir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    throw new RepositoryError(`${repoDir} is not a directory.`);
  }
  const [binder, dotBinder] = await Promise.all([
    isDirectory(join(repoDir, 'binder')),
    isDirectory(join(repoDir, '.binder')),
  ]);
  if (binder && dotBinder) {
    throw new RepositoryError(
      'The repository has both binder/ and .binder/; Bindery reads configuration from one of them. Merge them into one directory.',
    );
  }
  const config: RepoConfig = {
    configDir: binder ? 'binder' : dotBinder ? '.binder' : '',
    files: {},
  };
  const names: ConfigFileName[] = [...CONFIG_FILES, ...(config.configDir ? [] : ROOT_ONLY_FILES)];
  for (const name of names) {
    const text = await readConfigFile(repoDir, configPath(config, name));
    if (text !== undefined) config.files[name] = text;
  }
  return config;
}
