import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import type { ResolvedRepo } from '../build/builder.js';
import { imageNameFor } from '../build/image-name.js';
import type { Config } from '../config.js';
import { ForbiddenError, NotFoundError, UnavailableError } from '../errors.js';
import { githubApiUrl, resolveGitHubRef } from '../repos/github-refs.js';
import type { RepoSpec } from '../repos/repo-spec.js';
import { signInPath } from './sign-in-routes.js';
import { SignedInUsers, type SignedInUser } from './signed-in-users.js';

/** How long GitHub's word on whether a user may read a repository is kept. */
export const PERMISSION_TTL_SECONDS = 60;

export interface PrivateAccessDeps {
  config: Pick<Config, 'githubUrl' | 'publicUrl' | 'imagePrefix' | 'signIn' | 'sessionHost'>;
  redis: Redis;
  namespace: string;
  /** The GitHub App's installation on `owner/repo`, which fetches it; undefined when none. */
  installationFor?(owner: string, repo: string): Promise<number | undefined>;
  /** How GitHub is asked; the global fetch by default. */
  fetch?: typeof fetch;
}

/** A private repository's launch: who asked, and the installation that fetches it. */
export interface PrivateLaunch {
  /** GitHub's login and id of the user who launches. */
  user: string;
  userId: number;
  /** `owner/repo`. */
  repo: string;
  installationId: number;
}

/**
 * The 404 of a repository an anonymous visitor cannot launch: missing, or private and theirs to
 * launch once signed in (the same for both). `signInUrl` is the sign-in path that comes back.
 */
export class SignInNeededError extends NotFoundError {
  constructor(
    message: string,
    readonly signInUrl: string,
  ) {
    super(message);
  }
}

/** `owner` and `repo` of a `gh` spec, from its label `gh/<owner>/<repo>`. */
const ownerAndRepo = (spec: RepoSpec) => spec.repoLabel.split('/').slice(1, 3) as [string, string];

/**
 * Private GitHub repositories for the people who can read them (GITHUB_CLIENT_ID and
 * GITHUB_CLIENT_SECRET set): a signed-in visitor launches one only when GitHub, asked with
 * their own token, says they may read it at that moment (cached PERMISSION_TTL_SECONDS).
 */
export class PrivateAccess {
  readonly users: SignedInUsers;
  private readonly ask: typeof fetch;

  constructor(private readonly deps: PrivateAccessDeps) {
    this.users = new SignedInUsers(deps.redis, deps.namespace);
    this.ask = deps.fetch ?? fetch;
  }

  /** Whether `user` may read `owner/repo` now, as GitHub answers their token. */
  async canRead(user: SignedInUser, owner: string, repo: string): Promise<boolean> {
    const key = `${this.deps.namespace}:can-read:${createHash('sha256')
      .update(`${user.id}\n${user.token}\n${owner}/${repo}`.toLowerCase())
      .digest('hex')}`;
    const cached = await this.deps.redis.get(key);
    if (cached !== null) return cached === '1';
    const asked = await this.ask(
      `${githubApiUrl(this.deps.config.githubUrl)}/repos/${owner}/${repo}`,
      {
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${user.token}`,
          'x-github-api-version': '2022-11-28',
        },
        signal: AbortSignal.timeout(15_000),
      },
    ).catch((error: Error) => {
      throw new UnavailableError(`GitHub's API did not answer (${error.message}); try again.`);
    });
    let allowed = false;
    if (asked.ok) {
      const body = (await asked.json()) as { permissions?: { pull?: boolean } };
      allowed = body.permissions?.pull === true;
    } else if (![401, 403, 404].includes(asked.status)) {
      throw new UnavailableError(`GitHub's API answered ${asked.status}; try again.`);
    }
    await this.deps.redis.set(key, allowed ? '1' : '0', 'EX', PERMISSION_TTL_SECONDS);
    return allowed;
  }

  /**
   * What a launch of `spec` resolves to for the visitor of `request`, when the public resolution
   * failed with `failure` (not found, or private). A visitor who may read the repository gets
   * it pinned with their token and the installation that will fetch it; everyone else gets the
   * very 404 a repository that does not exist gets (an anonymous one is told to sign in,
   * whether or not the repository exists), so private names do not leak.
   */
  async resolveForVisitor(
    spec: RepoSpec,
    request: IncomingMessage,
    failure: unknown,
  ): Promise<{ resolved: ResolvedRepo; private: PrivateLaunch }> {
    if (
      spec.provider !== 'gh' ||
      !(failure instanceof NotFoundError || failure instanceof ForbiddenError)
    ) {
      throw failure;
    }
    const [owner, repo] = ownerAndRepo(spec);
    const missing = `GitHub has no repository ${owner}/${repo} with a branch, tag or commit "${spec.ref}" (or the repository is private).`;
    const user = await this.users.fromCookies(request.headers.cookie);
    if (!user) {
      const signIn = signInPath(`/v2/${spec.repoLabel}/${encodeURIComponent(spec.ref)}`);
      throw new SignInNeededError(
        `${missing} To launch a private repository you can read, sign in with GitHub: ${this.deps.config.publicUrl}${signIn}`,
        signIn,
      );
    }
    if (!(await this.canRead(user, owner, repo))) throw new NotFoundError(missing);
    if (this.deps.config.sessionHost) {
      // The sign-in cookie is the service host's: a session on a host of its own never gets
      // it, so nobody could be let into the session.
      throw new UnavailableError(
        `${owner}/${repo} is private, and this Bindery serves sessions on host names of their own (BINDERY_SESSION_HOST), which sign-in does not reach, so nobody could open its session. Its operator can unset BINDERY_SESSION_HOST to launch private repositories.`,
      );
    }
    const installationId = await this.deps.installationFor?.(owner, repo);
    if (installationId === undefined) {
      throw new NotFoundError(
        `${owner}/${repo} is private, and this Bindery's GitHub App is not installed on it, so Bindery cannot fetch it: ask its owner to install the app on ${owner}/${repo}.`,
      );
    }
    const ref = await resolveGitHubRef(
      {
        apiUrl: githubApiUrl(this.deps.config.githubUrl),
        token: async () => user.token,
        allowPrivate: true,
      },
      owner,
      repo,
      spec.ref,
    );
    return {
      resolved: {
        spec,
        ref,
        imageName: imageNameFor(this.deps.config.imagePrefix, spec.buildSlug, ref),
      },
      private: { user: user.login, userId: user.id, repo: `${owner}/${repo}`, installationId },
    };
  }
}
