import type { BuildEvent } from '../build-event.js';
import { isFinalEvent } from '../queue/build-log.js';
import { formatDuration } from '../format-duration.js';
import { finishedOutput } from './check-run-output.js';
import { signInLaunchUrl } from './pull-request-comment.js';
import {
  commentOnPullRequest,
  waitingPullRequestsKey,
  type CommentDeps,
  type PullRequestBuild,
} from './comment-on-pull-request.js';
import type { ReportJob } from './github-jobs.js';

export interface ReportDeps extends CommentDeps {
  builds: CommentDeps['builds'] & {
    follow(imageName: string, signal?: AbortSignal): AsyncIterable<BuildEvent>;
  };
  /** Ends the wait for a build that never ends (its job lost); the check then times out. */
  signal: AbortSignal;
}

/**
 * Follows one build to its end and reports it: the check run goes `in_progress` (with
 * `started_at`) when a worker starts the build and `completed` when it ends, with the summary
 * (the time it took comes with the final event) and the log's tail; then the comments of the
 * pull requests waiting for this commit are updated.
 */
export async function reportBuild(job: ReportJob, deps: ReportDeps): Promise<string> {
  const { octokit, config } = deps;
  const { owner, repo, sha, imageName, checkRunId } = job;
  const updateCheck = (fields: object) =>
    checkRunId
      ? octokit.rest.checks.update({ owner, repo, check_run_id: checkRunId, ...fields })
      : Promise.resolve();

  const events: BuildEvent[] = [];
  let started = false;
  try {
    for await (const event of deps.builds.follow(imageName, deps.signal)) {
      events.push(event);
      if (!started && event.phase !== 'waiting' && !isFinalEvent(event)) {
        started = true;
        await updateCheck({
          status: 'in_progress',
          started_at: new Date().toISOString(),
          output: { title: 'Building', summary: `Building the image \`${imageName}\`.` },
        });
      }
    }
  } catch (error) {
    if (!deps.signal.aborted) throw error;
  }

  const final = events.at(-1);
  const logUrl = job.private ? undefined : `${config.publicUrl}/logs/${imageName}`;
  if (!final || !isFinalEvent(final)) {
    await updateCheck({
      status: 'completed',
      conclusion: 'timed_out',
      completed_at: new Date().toISOString(),
      output: {
        title: 'No end of the build was seen',
        summary: `Bindery waited for the build of \`${imageName}\` longer than its time limit allows and stopped waiting.`,
      },
    });
    return `${owner}/${repo}@${sha.slice(0, 7)}: timed out waiting for the build`;
  }

  const built = final.phase === 'built';
  // From the final event itself: the job's own end time is written by BullMQ after the worker
  // wrote this event, so reading it here could find nothing yet (a title of just "Built").
  const { durationMs } = final;
  await updateCheck({
    status: 'completed',
    conclusion: built ? 'success' : job.failureConclusion,
    completed_at: new Date().toISOString(),
    output: finishedOutput({
      imageName,
      events,
      durationMs,
      logUrl,
      launchUrl: !built
        ? undefined
        : !job.private
          ? `${config.publicUrl}/v2/gh/${owner}/${repo}/${sha}`
          : // A private repository launches for its readers, once signed in.
            config.signIn && signInLaunchUrl(config.publicUrl, `/v2/gh/${owner}/${repo}/${sha}`),
    }),
  });

  const waiting = Object.entries(
    await deps.redis.hgetall(waitingPullRequestsKey(deps.namespace ?? 'bindery', owner, repo, sha)),
  );
  for (const [number, branch] of waiting) {
    await commentOnPullRequest(deps, {
      owner,
      repo,
      number: Number(number),
      sha,
      imageName,
      private: job.private,
      branch: (JSON.parse(branch) as PullRequestBuild['branch'] | null) ?? undefined,
      logUrl,
    });
  }
  const took = durationMs === undefined ? '' : ` in ${formatDuration(durationMs)}`;
  return `${owner}/${repo}@${sha.slice(0, 7)}: ${built ? 'built' : 'failed'}${took}, reported`;
}
