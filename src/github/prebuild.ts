import { imageNameFor } from '../build/image-name.js';
import type { Config } from '../config.js';
import type { BuildJob } from '../queue/build-job.js';
import { withRedisLock } from '../queue/with-redis-lock.js';
import { parseSpec } from '../repos/repo-spec.js';
import type { PrebuildJob, ReportJob } from './github-jobs.js';
import {
  commentOnPullRequest,
  waitingPullRequestsKey,
  type CommentDeps,
} from './comment-on-pull-request.js';
import {
  branchMatches,
  readRepoSettings,
  SETTINGS_PATH,
  type RepoSettings,
} from './repo-settings.js';

/** The name of the app's check run, one per commit. */
export const CHECK_NAME = 'Bindery';

export interface PrebuildDeps extends CommentDeps {
  appId: number;
  config: Pick<Config, 'publicUrl' | 'githubUrl' | 'imagePrefix'>;
  builds: CommentDeps['builds'] & { enqueue(job: BuildJob): Promise<unknown> };
  reports: { addReport(job: ReportJob): Promise<unknown> };
}

/** The fields of the commit's newest check run that decide whether to open another. */
interface LatestCheckRun {
  id: number;
  status: string;
  conclusion: string | null;
  output: { title: string | null; summary: string | null };
}

/** Why a commit is not built: `quiet` asks for nothing at all, else a skipped check says why. */
type Decision = { build: true } | { build: false; reason?: string };

/** Applies the repository's settings to the event (README "GitHub App" lists the rules). */
export function decide(job: PrebuildJob, settings: RepoSettings): Decision {
  const pr = job.pullRequest;
  if (pr?.fork && job.private) {
    return {
      build: false,
      reason:
        'Bindery never builds pull requests from forks of a private repository: it would have to fetch them with the app’s access to the repository.',
    };
  }
  if (pr?.fork && !settings.forks) {
    return {
      build: false,
      reason: `Pull requests from forks are not prebuilt unless \`${SETTINGS_PATH}\` sets \`forks: true\`.`,
    };
  }
  switch (job.trigger) {
    case 'rerequest':
      return { build: true };
    case 'pull_request':
      return { build: settings.pullRequests };
    default: {
      const onDefault = job.branch === job.defaultBranch;
      return {
        build: onDefault
          ? settings.defaultBranch
          : job.branch !== undefined && branchMatches(job.branch, settings.branches),
      };
    }
  }
}

/**
 * The slow half of a webhook: reads the repository's settings, applies them, opens (or finds)
 * the commit's check run, queues the build and its report, and writes the pull request's
 * comment. Returns a line for the log saying what it did.
 */
export async function prebuild(job: PrebuildJob, deps: PrebuildDeps): Promise<string> {
  const { octokit, config } = deps;
  const { owner, repo } = job;
  let { sha, branch, defaultBranch } = job;
  if (!sha) {
    // A new installation names repositories only: build the head of each default branch.
    const { data: repository } = await octokit.rest.repos.get({ owner, repo });
    defaultBranch = branch = repository.default_branch;
    sha = (await octokit.rest.repos.getBranch({ owner, repo, branch })).data.commit.sha;
  }
  const where = `${owner}/${repo}@${sha.slice(0, 7)}`;
  const spec = parseSpec('gh', `${owner}/${repo}/${sha}`, { githubUrl: config.githubUrl });
  const imageName = imageNameFor(config.imagePrefix, spec.buildSlug, sha);
  const logUrl = job.private ? undefined : `${config.publicUrl}/logs/${imageName}`;
  const check = { owner, repo, name: CHECK_NAME, head_sha: sha, external_id: imageName };

  // Check runs of one commit are opened under a lock, each event seeing the newest one, so
  // that events arriving together open one check run between them.
  const withLatestCheck = <T>(critical: (latest: LatestCheckRun | undefined) => Promise<T>) =>
    withRedisLock(
      deps.redis,
      `${deps.namespace ?? 'bindery'}:github:check:${owner}/${repo}@${sha}`,
      async () => {
        const { data } = await octokit.rest.checks.listForRef({
          owner,
          repo,
          ref: sha,
          check_name: CHECK_NAME,
          app_id: deps.appId,
          filter: 'latest',
        });
        return critical(data.check_runs[0]);
      },
      // GitHub's writes are spaced a second apart per installation.
      { ttlMs: 60_000, waitMs: 120_000 },
    );
  /** A finished check run that says why nothing is built, unless the newest says it already. */
  const explain = (conclusion: 'failure' | 'skipped', title: string, summary: string) =>
    withLatestCheck(async (latest) => {
      if (latest?.output.title === title && latest.output.summary === summary) return;
      await octokit.rest.checks.create({
        ...check,
        status: 'completed',
        conclusion,
        completed_at: new Date().toISOString(),
        output: { title, summary },
      });
    });

  const read = await readRepoSettings(octokit, owner, repo);
  if ('problem' in read) {
    await explain('failure', `Invalid ${SETTINGS_PATH}`, read.problem);
    return `${where}: ${read.problem}`;
  }
  const { settings } = read;
  const decision = decide({ ...job, branch, defaultBranch }, settings);
  if (!decision.build) {
    if (decision.reason && settings.check) await explain('skipped', 'Not built', decision.reason);
    return `${where}: not built (${decision.reason ?? `the settings leave ${job.trigger} events out`})`;
  }

  // A running check is joined (its report follows the build) and a success stands; a failure
  // is built again, as a launch would, and a re-run always opens a new check run.
  const checkRun = settings.check
    ? await withLatestCheck(async (latest) => {
        const standing =
          job.trigger !== 'rerequest' &&
          latest &&
          (latest.status !== 'completed' || latest.conclusion === 'success');
        if (standing) return { id: latest.id, opened: false };
        const { data } = await octokit.rest.checks.create({
          ...check,
          status: 'queued',
          ...(logUrl && { details_url: logUrl }),
          output: {
            title: 'Waiting for a build worker',
            summary: `Queued the build of \`${imageName}\`.`,
          },
        });
        return { id: data.id, opened: true };
      })
    : undefined;

  // Without a check run, the build log tells whether this commit is built already.
  const build = checkRun
    ? checkRun.opened
    : (await deps.builds.lastEvent(imageName))?.phase !== 'built';
  if (build) {
    await deps.builds.enqueue({
      imageName,
      ref: sha,
      spec,
      // Only a private repository needs the installation's token to be fetched.
      ...(job.private && { installationId: job.installationId }),
    });
    await deps.reports.addReport({
      installationId: job.installationId,
      owner,
      repo,
      private: job.private,
      sha,
      imageName,
      checkRunId: checkRun?.id,
      failureConclusion: settings.failureConclusion,
    });
  }

  const pr = job.pullRequest;
  let commented = '';
  if (pr && settings.comment) {
    const branchLink = branch && pr.headRepo ? { name: branch, repo: pr.headRepo } : undefined;
    const key = waitingPullRequestsKey(deps.namespace ?? 'bindery', owner, repo, sha);
    await deps.redis
      .multi()
      .hset(key, String(pr.number), JSON.stringify(branchLink ?? null))
      .expire(key, 7 * 24 * 3600)
      .exec();
    const done = await commentOnPullRequest(deps, {
      owner,
      repo,
      number: pr.number,
      sha,
      imageName,
      private: job.private,
      branch: branchLink,
      logUrl,
      updatedAt: pr.updatedAt,
    });
    commented = `, comment ${done} on #${pr.number}`;
  }
  const checked = checkRun ? `, check run ${checkRun.id}` : '';
  return `${where}: ${build ? 'build queued' : 'built or building already'}${checked}${commented}`;
}
