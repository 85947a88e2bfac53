import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { BuildEvent } from '../build-event.js';
import { withRedisLock } from '../queue/with-redis-lock.js';
import type { InstallationOctokit } from './github-app.js';
import { renderComment, upsertComment, type CommentContent } from './pull-request-comment.js';

/**
 * The pull requests that want to hear when `sha`'s build ends (the report updates their
 * comments): a hash of pull request number to the comment's branch link.
 */
export const waitingPullRequestsKey = (
  namespace: string,
  owner: string,
  repo: string,
  sha: string,
) => `${namespace}:github:prs:${owner}/${repo}@${sha}`;

export interface CommentDeps {
  octokit: InstallationOctokit;
  botLogin: () => Promise<string>;
  config: Pick<Config, 'publicUrl' | 'githubUrl'> & Partial<Pick<Config, 'signIn'>>;
  builds: { lastEvent(imageName: string): Promise<BuildEvent | undefined> };
  /** Locks, and the pull requests waiting for each commit's build. */
  redis: Redis;
  /**
   * Prefix of those keys: the service's namespace, so that two services sharing a Redis never
   * see each other's waiting pull requests or locks. @defaultValue bindery
   */
  namespace?: string;
}

export interface PullRequestBuild {
  owner: string;
  repo: string;
  number: number;
  sha: string;
  imageName: string;
  private: boolean;
  branch?: CommentContent['branch'];
  logUrl?: string;
  /** The event's `updated_at` when the comment should follow this head (see upsertComment). */
  updatedAt?: string;
}

/**
 * Writes the pull request's comment for one build. The prebuild that asks for the build and the
 * report of its end may write at the same moment; one lock per pull request takes them in turn,
 * and the build's state is read inside it, so the last write always shows the current state.
 */
export function commentOnPullRequest(deps: CommentDeps, build: PullRequestBuild) {
  const { owner, repo, number, sha } = build;
  return withRedisLock(
    deps.redis,
    `${deps.namespace ?? 'bindery'}:github:comment:${owner}/${repo}#${number}`,
    async () => {
      const phase = (await deps.builds.lastEvent(build.imageName))?.phase;
      return upsertComment(deps.octokit, {
        owner,
        repo,
        number,
        botLogin: await deps.botLogin(),
        head: sha,
        updatedAt: build.updatedAt,
        text: renderComment({
          ...deps.config,
          owner,
          repo,
          sha,
          state: phase === 'built' || phase === 'failed' ? phase : 'building',
          branch: build.branch,
          logUrl: build.logUrl,
          private: build.private,
          privateLaunches: deps.config.signIn !== undefined,
        }),
      });
    },
    // GitHub's writes are spaced a second apart per installation; a comment takes a few calls.
    { ttlMs: 60_000, waitMs: 120_000 },
  );
}
