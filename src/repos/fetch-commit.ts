import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, RepositoryError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import { GitCommandError, OUT_OF_MEMORY, runGit, type RunGitOptions } from './git.js';
import { remoteFor, type GitHostGuard } from './git-host-guard.js';
import { describeRemoteFailure } from './resolve-ref.js';

export interface FetchLimits {
  timeoutMs: number;
  /** Largest fetch (objects in .git) and largest checkout (files' total size). */
  maxBytes: number;
  /** Most files a checkout may hold. @defaultValue DEFAULT_MAX_FILES */
  maxFiles?: number;
}

/**
 * Most files Bindery checks out unless told otherwise: ten times what a large Binder
 * repository holds. Identical nested trees make billions of files from a few KiB of objects.
 */
export const DEFAULT_MAX_FILES = 100_000;
/**
 * Memory the fetch may use. A depth-1 fetch needs far less (index-pack's delta cache is
 * 96 MiB), but a host may send a ref listing of millions first, or one that never ends, and
 * git holds all of it (2 million refs took 540 MB).
 */
const FETCH_MEMORY_BYTES = 512 * 2 ** 20;
/** The longest line `ls-tree -r -l -z` prints for one file: mode, type, id, size, a 4 KiB path. */
const LS_TREE_LINE_BYTES = 4_200;

/** Total size of the files below `dir`, for watching a fetch as it grows. */
async function directorySize(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    total += await stat(join(entry.parentPath, entry.name)).then(
      (s) => s.size,
      () => 0,
    );
  }
  return total;
}

export interface FetchOptions {
  /**
   * A GitHub App installation token that can read the repository, for a private one on GitHub.
   * It reaches git only through the environment, and no error carries it.
   */
  token?: string;
  /**
   * Check the host now and hold git to the addresses checked. Without it, git is held to what
   * the guard found for the host lately in this process, if anything (remoteFor).
   */
  guard?: GitHostGuard;
}

/**
 * Git's words when the host refused to serve without (other) credentials: a 401 ends in
 * "Authentication failed" or, with no one to ask, "could not read Username"; a 403 is said as
 * a returned error.
 */
const REFUSED =
  /authentication failed|could not read (username|password)|returned error: 40[13]\b/i;
/** GitHub answers 404 for a private repository the token may not read, to hide that it exists. */
const HIDDEN = /repository '.*' not found/i;

/**
 * The `Authorization` header GitHub accepts an installation token in over HTTPS: basic
 * authentication with the user name `x-access-token`.
 * See https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation#about-authentication-as-a-github-app-installation
 */
function basicCredentials(token: string): string {
  return Buffer.from(`x-access-token:${token}`).toString('base64');
}

/** `error` with every copy of the secrets in git's output blanked out. */
function withoutSecrets(error: unknown, secrets: string[]): unknown {
  if (!(error instanceof GitCommandError) || secrets.length === 0) return error;
  const stderr = secrets.reduce((text, secret) => text.replaceAll(secret, '***'), error.stderr);
  return new GitCommandError(error.args, stderr, error.timedOut);
}

/** The sentence for a repository that would not let Bindery read it: what to check. */
function refusedMessage(url: string, withToken: boolean): string {
  const installed =
    'the GitHub App is installed on the repository with the "Contents: read" permission.';
  return withToken
    ? `${url} could not be read with the GitHub App's credentials. Check that ${installed}`
    : `${url} could not be read without credentials. Check the URL, and for a private ` +
        `repository, that ${installed}`;
}

/**
 * Checks out commit `sha` of the repository at `url` into `dir` (created, must be empty):
 * a depth-1 fetch of that one commit, stopped when it takes longer than `timeoutMs` or its
 * objects or working tree grow past `maxBytes`. With `options.token`, the fetch authenticates
 * as a GitHub App installation; a refusal is a RepositoryError that says what to check.
 */
export async function fetchCommit(
  url: string,
  sha: string,
  dir: string,
  limits: FetchLimits,
  options: FetchOptions = {},
): Promise<void> {
  const { token } = options;
  const remote = await remoteFor(url, options.guard);
  const credentials = token ? basicCredentials(token) : undefined;
  // Git does not print the header, but its output is no place to bet a secret on.
  const secrets = [token, credentials].filter((secret): secret is string => Boolean(secret));
  await mkdir(dir, { recursive: true });
  const git = (
    args: string[],
    signal?: AbortSignal,
    config?: Record<string, string>,
    more?: Pick<RunGitOptions, 'onStdout' | 'maxOutputBytes' | 'maxMemoryBytes'>,
  ) =>
    runGit(args, { cwd: dir, timeoutMs: limits.timeoutMs, signal, config, ...more }).catch(
      (error: unknown) => {
        throw withoutSecrets(error, secrets);
      },
    );
  await git(['init', '--quiet']);

  const tooBig = new AbortController();
  const watcher = setInterval(async () => {
    if ((await directorySize(join(dir, '.git'))) > limits.maxBytes) tooBig.abort();
  }, 500);
  try {
    await git(
      ['fetch', '--quiet', '--depth=1', '--no-tags', '--', remote.url, sha],
      tooBig.signal,
      // Only the fetch talks to the host; the header goes nowhere else and is never written.
      {
        ...remote.config,
        // Always keep the pack as it arrives (index-pack writes it to .git as it streams in), so
        // the size watcher sees every byte: under the default of 100 objects git unpacks them,
        // holding each object in memory until it is whole, and a single large file was never
        // seen on disk (the fetch ran on to the clone timeout or to git's memory limit).
        'fetch.unpackLimit': '1',
        ...(credentials && { 'http.extraHeader': `Authorization: Basic ${credentials}` }),
      },
      { maxMemoryBytes: FETCH_MEMORY_BYTES },
    );
  } catch (error) {
    if (error instanceof GitCommandError && OUT_OF_MEMORY.test(error.stderr)) {
      throw new RepositoryError(
        `${url} sent more than Bindery reads before a single file (its list of refs, most ` +
          `likely); Bindery builds repositories with fewer branches and tags.`,
        { cause: error },
      );
    }
    if (tooBig.signal.aborted) {
      throw new RepositoryError(
        `${url} is larger than this service's limit of ${formatBytes(limits.maxBytes)}; ` +
          `Bindery builds repositories up to that size.`,
      );
    }
    if (
      error instanceof GitCommandError &&
      (REFUSED.test(error.stderr) || (token && HIDDEN.test(error.stderr)))
    ) {
      throw new RepositoryError(refusedMessage(url, Boolean(token)));
    }
    if (
      error instanceof GitCommandError &&
      /not our ref|remote error|couldn't find remote ref|no such remote ref/i.test(error.stderr)
    ) {
      throw new NotFoundError(`${url} has no commit ${sha}.`);
    }
    throw describeRemoteFailure(url, error);
  } finally {
    clearInterval(watcher);
  }

  await assertCheckoutFits(url, sha, limits, (onStdout, signal, maxOutputBytes) =>
    git(['ls-tree', '-r', '-l', '-z', '--full-tree', 'FETCH_HEAD'], signal, undefined, {
      onStdout,
      maxOutputBytes,
    }),
  );
  await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', 'FETCH_HEAD']);
}

type ListTree = (
  onStdout: (text: string) => void,
  signal: AbortSignal,
  maxOutputBytes: number,
) => Promise<unknown>;

/**
 * The working tree's file count and size are known before it is written: counted as
 * `ls-tree` streams, and `ls-tree` stopped the moment either passes its limit, so a tree bomb
 * costs a fraction of a second and nothing is held but the line being read.
 */
async function assertCheckoutFits(
  url: string,
  sha: string,
  limits: FetchLimits,
  listTree: ListTree,
): Promise<void> {
  const maxFiles = limits.maxFiles ?? DEFAULT_MAX_FILES;
  const stop = new AbortController();
  let files = 0;
  let bytes = 0;
  let partial = '';
  const onStdout = (text: string) => {
    if (stop.signal.aborted) return;
    const records = (partial + text).split('\0');
    partial = records.pop() ?? '';
    for (const record of records) {
      // <mode> SP <type> SP <object> SP* <size> TAB <path>; submodules (type commit) hold nothing.
      const [mode, type, , size] = record.slice(0, record.indexOf('\t')).split(/ +/);
      if (type !== 'blob' || !mode) continue;
      files += 1;
      bytes += Number(size) || 0;
      if (files > maxFiles || bytes > limits.maxBytes) {
        stop.abort();
        return;
      }
    }
  };
  try {
    await listTree(onStdout, stop.signal, (maxFiles + 1) * LS_TREE_LINE_BYTES);
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  }
  const at = `${url} at ${sha.slice(0, 12)}`;
  if (files > maxFiles) {
    throw new RepositoryError(
      `${at} holds more files than this service's limit of ${maxFiles.toLocaleString('en')}; ` +
        `Bindery builds repositories with fewer files.`,
    );
  }
  if (bytes > limits.maxBytes) {
    throw new RepositoryError(
      `${at} holds files past this service's limit of ${formatBytes(limits.maxBytes)}; ` +
        `Bindery builds repositories up to that size.`,
    );
  }
}
