import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, RepositoryError } from '../errors.js';
import { GitCommandError, runGit } from './git.js';
import { describeRemoteFailure } from './resolve-ref.js';

export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
}

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

const megabytes = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/**
 * Checks out commit `sha` of the repository at `url` into `dir` (created, must be empty):
 * a depth-1 fetch of that one commit, stopped when it takes longer than `timeoutMs` or its
 * objects or working tree grow past `maxBytes`.
 */
export async function fetchCommit(
  url: string,
  sha: string,
  dir: string,
  limits: FetchLimits,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const git = (args: string[], signal?: AbortSignal) =>
    runGit(args, { cwd: dir, timeoutMs: limits.timeoutMs, signal });
  await git(['init', '--quiet']);

  const tooBig = new AbortController();
  const watcher = setInterval(async () => {
    if ((await directorySize(join(dir, '.git'))) > limits.maxBytes) tooBig.abort();
  }, 500);
  try {
    await git(['fetch', '--quiet', '--depth=1', '--no-tags', '--', url, sha], tooBig.signal);
  } catch (error) {
    if (tooBig.signal.aborted) {
      throw new RepositoryError(
        `${url} is larger than this service's limit of ${megabytes(limits.maxBytes)}; ` +
          `Bindery builds repositories up to that size.`,
      );
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

  // The working tree's size is known before it is written: refuse a checkout past the limit.
  const { stdout } = await git(['ls-tree', '-r', '-l', '--full-tree', 'FETCH_HEAD']);
  const treeBytes = stdout
    .split('\n')
    .map((line) => Number(line.split(/\s+/)[3]))
    .filter(Number.isFinite)
    .reduce((sum, size) => sum + size, 0);
  if (treeBytes > limits.maxBytes) {
    throw new RepositoryError(
      `${url} at ${sha.slice(0, 12)} holds ${megabytes(treeBytes)} of files, more than this ` +
        `service's limit of ${megabytes(limits.maxBytes)}.`,
    );
  }
  await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', 'FETCH_HEAD']);
}
