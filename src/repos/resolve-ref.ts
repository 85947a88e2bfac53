import { NotFoundError, UnavailableError } from '../errors.js';
import { GitCommandError, lastLine, runGit } from './git.js';

const FULL_SHA = /^[0-9a-f]{40}$/;
const UNREACHABLE =
  /could not resolve host|connection refused|timed out|failed to connect|network is unreachable|couldn't connect/i;

/**
 * Resolves `ref` (a branch, a tag, `HEAD` for the default branch, or a full commit SHA) at the
 * git repository `url` to a full commit SHA, with `git ls-remote`. Annotated tags resolve to
 * the commit they point at.
 */
export async function resolveRef(url: string, ref: string, timeoutMs = 60_000): Promise<string> {
  if (FULL_SHA.test(ref)) return ref;
  let stdout: string;
  try {
    ({ stdout } = await runGit(['ls-remote', '--', url], { timeoutMs }));
  } catch (error) {
    throw describeRemoteFailure(url, error);
  }
  const refs = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha && name) refs.set(name, sha);
  }
  if (refs.size === 0) {
    // A web page answers git's first request too; git then reads it as an empty repository.
    throw new NotFoundError(
      `${url} is not a git repository Bindery can read (it lists no branches or tags). Check the URL.`,
    );
  }
  const candidates =
    ref === 'HEAD'
      ? ['HEAD']
      : [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, `${ref}^{}`, ref];
  for (const name of candidates) {
    const sha = refs.get(name);
    if (sha) return sha;
  }
  if (/^[0-9a-f]{7,39}$/.test(ref)) {
    throw new NotFoundError(
      `"${ref}" looks like a shortened commit SHA; git repositories resolve only full ` +
        `40-character SHAs, branch names and tags. Use the full SHA.`,
    );
  }
  throw new NotFoundError(`${url} has no branch or tag named "${ref}".`);
}

/** Turns a failed remote git command into an error a person can act on. */
export function describeRemoteFailure(url: string, error: unknown): Error {
  if (!(error instanceof GitCommandError)) return error as Error;
  const said = lastLine(error.stderr);
  if (error.timedOut || UNREACHABLE.test(error.stderr)) {
    return new UnavailableError(`Could not reach ${url}${said ? `: git said "${said}"` : ''}.`);
  }
  return new NotFoundError(
    `${url} is not a git repository Bindery can read${said ? ` (git said "${said}")` : ''}. ` +
      `Check the URL; private repositories are not supported.`,
  );
}
