import { z } from 'zod';

/** The BullMQ queue of the GitHub App's slow work: everything that calls GitHub's API. */
export const GITHUB_QUEUE = 'bindery-github';

/**
 * The queue of build reports, beside `queueName`'s prebuilds: a report waits as long as its
 * build, so it must not hold a slot that a webhook's prebuild needs.
 */
export const reportQueueFor = (queueName: string) => `${queueName}-reports`;

const sha = z.string().regex(/^[0-9a-f]{40}$/, 'must be a full commit SHA');

/** The repository a job is about, and the installation whose token reaches it. */
const repositoryFields = {
  installationId: z.number().int().positive(),
  owner: z.string().min(1),
  repo: z.string().min(1),
  private: z.boolean(),
};

/**
 * A request to prebuild one commit of one repository, made from a webhook delivery. The
 * handler only copies fields out of the payload; everything that needs GitHub's API (the
 * repository's settings, the check run, the comment) happens when the job runs.
 */
export const prebuildJobSchema = z.object({
  ...repositoryFields,
  /** The commit; absent for a new installation, whose default branch head is looked up. */
  sha: sha.optional(),
  /** The branch the commit is the head of, for the branch launch link and branch rules. */
  branch: z.string().min(1).optional(),
  defaultBranch: z.string().min(1).optional(),
  pullRequest: z
    .object({
      number: z.number().int().positive(),
      /**
       * The pull request's `updated_at`: an older event never overwrites a newer comment.
       * Absent for a re-run check, which reports on its commit but never moves the comment.
       */
      updatedAt: z.string().optional(),
      /** The head is in another repository (a fork); null head repositories count as forks. */
      fork: z.boolean(),
      /** `owner/repo` that holds the head branch, when the payload names it. */
      headRepo: z.string().min(1).optional(),
    })
    .optional(),
  trigger: z.enum(['push', 'pull_request', 'installation', 'rerequest']),
});

export type PrebuildJob = z.infer<typeof prebuildJobSchema>;

/** Following one build to its end and reporting it on its check run and pull request comments. */
export const reportJobSchema = z.object({
  ...repositoryFields,
  sha,
  imageName: z.string().min(1),
  /** Absent when the repository's settings turn check runs off. */
  checkRunId: z.number().int().positive().optional(),
  failureConclusion: z.enum(['failure', 'neutral']),
});

export type ReportJob = z.infer<typeof reportJobSchema>;

/** The report job's id: one report per check run, or per commit when there is no check run. */
export const reportJobId = (job: ReportJob) =>
  job.checkRunId ? `report-${job.checkRunId}` : `report-${job.owner}/${job.repo}@${job.sha}`;
