import { NotFoundError, RepositoryError, UnavailableError } from '../errors.js';
import { GitCommandError, OUT_OF_MEMORY, runGit } from './git.js';
import { remoteFor, type GitHostGuard } from './git-host-guard.js';

const FULL_SHA = /^[0-9a-f]{40}$/;
const UNREACHABLE =
  /could not resolve host|connection refused|timed out|failed to connect|network is unreachable|couldn't connect/i;

/**
 * Git's words for an HTTP redirect it did not follow (`http.followRedirects=false`): "The
 * requested URL returned error: 301" on the ref listing, "RPC failed; HTTP 302" on a fetch.
 */
const REDIRECTED = /returned error: 30[1-8]\b|\bHTTP 30[1-8]\b/;

/**
 * How much of a ref listing Bindery reads: 1 MiB is thousands of refs of the one name asked
 * for, where a repository has a handful. A host lists what it likes, millions if it likes.
 */
const MAX_LISTING_BYTES = 2 ** 20;
/**
 * Memory git may use for `ls-remote`: a host that ignores the ref prefixes sends its whole
 * listing, which git holds before it filters (2 million refs took 540 MB). A repository with
 * 100,000 refs needs a tenth of this.
 */
const MAX_LISTING_MEMORY = 256 * 2 ** 20;

/**
 * Resolves `ref` (a branch, a tag, `HEAD` for the default branch, or a full commit SHA) at the
 * git repository `url` to a full commit SHA, with `git ls-remote`. Annotated tags resolve to
 * the commit they point at. Only `HEAD` and refs ending in `ref` are asked for (protocol v2
 * hosts filter them server-side, and git filters what any other host sends), and the listing
 * is cut off past MAX_LISTING_BYTES. With `options.guard`, the host is checked first and git
 * held to the addresses checked; without, to those the guard found for it lately (remoteFor).
 */
export async function resolveRef(
  url: string,
  ref: string,
  timeoutMs = 60_000,
  options: { guard?: GitHostGuard } = {},
): Promise<string> {
  if (FULL_SHA.test(ref)) return ref;
  const remote = await remoteFor(url, options.guard);
  let stdout: string;
  try {
    // An annotated tag's commit is listed as `<tag>^{}`, which `<tag>` alone does not match.
    const patterns = ref === 'HEAD' ? ['HEAD'] : ['HEAD', ref, `${ref}^{}`];
    ({ stdout } = await runGit(['ls-remote', '--', remote.url, ...patterns], {
      timeoutMs,
      maxOutputBytes: MAX_LISTING_BYTES,
      maxMemoryBytes: MAX_LISTING_MEMORY,
      config: remote.config,
    }));
  } catch (error) {
    if (
      error instanceof GitCommandError &&
      (error.outputCap !== undefined || OUT_OF_MEMORY.test(error.stderr))
    ) {
      throw new RepositoryError(
        `${url} lists more refs than Bindery reads; Bindery builds repositories with fewer branches and tags.`,
        { cause: error },
      );
    }
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

/** Why a connection failed, in Bindery's words: git's are not repeated (describeRemoteFailure). */
function unreachableReason(stderr: string): string {
  if (/could not resolve host/i.test(stderr)) return 'its host name does not resolve';
  if (/connection refused/i.test(stderr)) return 'the connection was refused';
  if (/network is unreachable/i.test(stderr)) return 'the network is unreachable';
  if (/timed out/i.test(stderr)) return 'the connection timed out';
  return 'the connection failed';
}

/**
 * Turns a failed remote git command into an error a person can act on. Git's own words are not
 * passed on: they quote what the host answered ("remote error: …", "bad line length character:
 * …", a line it could not parse), and the host may be one that only this machine can reach
 * (BINDERY_GIT_ALLOWED_HOSTS). The GitCommandError, stderr and all, stays as the cause, for logs.
 */
export function describeRemoteFailure(url: string, error: unknown): Error {
  if (!(error instanceof GitCommandError)) return error as Error;
  if (error.timedOut) {
    return new UnavailableError(
      `Could not reach ${url}: it did not answer in time. Try again later.`,
      {
        cause: error,
      },
    );
  }
  if (REDIRECTED.test(error.stderr)) {
    return new RepositoryError(
      `${url} redirects to another address, and Bindery follows no redirects from a git host ` +
        `(one could lead the clone to a private address). Use the address the repository is served at.`,
      { cause: error },
    );
  }
  if (UNREACHABLE.test(error.stderr)) {
    return new UnavailableError(
      `Could not reach ${url}: ${unreachableReason(error.stderr)}. Check the URL, or try again later.`,
      { cause: error },
    );
  }
  return new NotFoundError(
    `${url} is not a git repository Bindery can read. Check the URL; private repositories are not supported.`,
    { cause: error },
  );
}
