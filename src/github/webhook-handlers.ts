import type { ApplicationFunction, Context } from 'probot';
import { CHECK_NAME } from './prebuild.js';
import type { PrebuildJob } from './github-jobs.js';

export interface WebhookHandlerDeps {
  /** Queues a delivery's prebuild requests (GitHubQueue.addPrebuilds). */
  addPrebuilds(delivery: string, jobs: readonly PrebuildJob[]): Promise<unknown>;
}

/** The fields of a payload's `repository` that a prebuild needs; every event's shape has them. */
interface Repository {
  name: string;
  private: boolean;
  default_branch: string;
  owner: { login: string } | null;
}
type CheckPullRequest = Context<'check_run'>['payload']['check_run']['pull_requests'][number];

const ZERO_SHA = /^0{40}$/;

/** What every prebuild of `repository` carries, from any event about it. */
function repositoryFields(installationId: number, repository: Repository) {
  return {
    installationId,
    owner: repository.owner?.login ?? '',
    repo: repository.name,
    private: repository.private,
    defaultBranch: repository.default_branch,
  };
}

/**
 * The prebuild of a re-run check run or check suite: its commit and branch, and its first pull
 * request, whose head lives in another repository when it comes from a fork.
 */
function rerun(
  installationId: number,
  repository: Repository,
  checked: {
    head_sha: string;
    head_branch?: string | null;
    pull_requests: readonly CheckPullRequest[];
  },
): PrebuildJob {
  const pr = checked.pull_requests[0];
  return {
    ...repositoryFields(installationId, repository),
    sha: checked.head_sha,
    branch: checked.head_branch ?? undefined,
    pullRequest: pr && { number: pr.number, fork: pr.head.repo.id !== pr.base.repo.id },
    trigger: 'rerequest',
  };
}

/**
 * The Probot app: each event becomes prebuild requests on the queue, keyed by the delivery id,
 * and nothing else. GitHub gives a webhook 10 s; whatever needs its API runs in the GitHub
 * worker (prebuild.ts). Tag pushes, branch deletions and check runs of other apps are ignored.
 */
export function createWebhookHandlers({ addPrebuilds }: WebhookHandlerDeps): ApplicationFunction {
  return (app) => {
    app.on('push', async ({ id, payload }) => {
      if (!payload.installation || !payload.ref.startsWith('refs/heads/')) return;
      if (payload.deleted || ZERO_SHA.test(payload.after)) return;
      await addPrebuilds(id, [
        {
          ...repositoryFields(payload.installation.id, payload.repository),
          sha: payload.after,
          branch: payload.ref.slice('refs/heads/'.length),
          trigger: 'push',
        },
      ]);
    });

    app.on(
      ['pull_request.opened', 'pull_request.synchronize', 'pull_request.reopened'],
      async ({ id, payload }) => {
        if (!payload.installation) return;
        const { head, base, number, updated_at } = payload.pull_request;
        await addPrebuilds(id, [
          {
            ...repositoryFields(payload.installation.id, payload.repository),
            sha: head.sha,
            branch: head.ref,
            pullRequest: {
              number,
              updatedAt: updated_at,
              // A fork that was deleted leaves `head.repo` null; it is still not this repository.
              fork: head.repo?.full_name !== base.repo.full_name,
              headRepo: head.repo?.full_name,
            },
            trigger: 'pull_request',
          },
        ]);
      },
    );

    app.on(['installation.created', 'installation_repositories.added'], async (context) => {
      const { id, payload } = context;
      const repositories =
        'repositories_added' in payload ? payload.repositories_added : (payload.repositories ?? []);
      const account = payload.installation.account;
      const owner = account && ('login' in account ? account.login : account.slug);
      if (!owner) return;
      await addPrebuilds(
        id,
        repositories.map((repository) => ({
          installationId: payload.installation.id,
          owner,
          repo: repository.name,
          private: repository.private,
          trigger: 'installation',
        })),
      );
    });

    app.on('check_run.rerequested', async ({ id, payload }) => {
      const run = payload.check_run;
      if (!payload.installation || run.name !== CHECK_NAME) return;
      const checked = { ...run, head_branch: run.check_suite.head_branch };
      await addPrebuilds(id, [rerun(payload.installation.id, payload.repository, checked)]);
    });

    app.on('check_suite.rerequested', async ({ id, payload }) => {
      if (!payload.installation) return;
      await addPrebuilds(id, [
        rerun(payload.installation.id, payload.repository, payload.check_suite),
      ]);
    });
  };
}
