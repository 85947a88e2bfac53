import { constants } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { RepositoryError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';

/**
 * Files read from the config directory (binder/, .binder/ or the root), as repo2docker does.
 * `.dockerignore` and `.containerignore` are read there too: repo2docker's base.py takes a
 * build context's ignore rules from `binder_path(...)`.
 */
export const CONFIG_FILES = [
  'Dockerfile',
  'environment.yml',
  'environment.yaml',
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
  '.dockerignore',
  '.containerignore',
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

/** What a file that is neither a regular file, a directory nor a link is, for messages. */
function kindOf(info: Stats): string {
  if (info.isFIFO()) return 'a named pipe';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Reads at most `limit` bytes of an open file: a file may grow after it was measured. */
async function readBounded(
  full: string,
  path: string,
  limit: number,
  expected: Stats,
): Promise<Buffer> {
  // O_NOFOLLOW and O_NONBLOCK: should the file be swapped for a link or a pipe after lstat, the
  // open neither follows the link nor waits for a writer; fstat then notices the swap.
  const handle = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.ino !== expected.ino || opened.dev !== expected.dev) {
      throw new RepositoryError(`${path} changed while Bindery read it; build again.`);
    }
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

const tooBig = (path: string, bytes: number) =>
  new RepositoryError(`${path} is ${formatBytes(bytes)}; configuration files must be under 1 MiB.`);

/**
 * The text of the file at `path` inside `repoDir`, or undefined when there is none. A link is
 * followed only when it stays inside the repository; a directory, a device, a named pipe or a
 * socket is refused without being opened, as is a file over CONFIG_FILE_MAX_BYTES or one that
 * is not UTF-8 text.
 */
export async function readConfigFile(repoDir: string, path: string): Promise<string | undefined> {
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
  if (!info.isFile()) {
    throw new RepositoryError(
      `${path} is ${kindOf(info)}, not a regular file; replace it with a text file.`,
    );
  }
  if (info.size > CONFIG_FILE_MAX_BYTES) throw tooBig(path, info.size);
  let bytes: Buffer;
  try {
    bytes = await readBounded(full, path, CONFIG_FILE_MAX_BYTES, info);
  } catch (error) {
    if (error instanceof RepositoryError) throw error;
    throw new RepositoryError(
      `${path} cannot be read (${(error as NodeJS.ErrnoException).code}); check its permissions.`,
    );
  }
  if (bytes.length > CONFIG_FILE_MAX_BYTES) throw tooBig(path, bytes.length);
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
