import type { Config } from '../config.js';
import { BinderyError } from '../errors.js';
import type { SessionRecord } from './session-store.js';

/** A launch refused by a quota: BinderHub answers these with 429 and these words. */
export class QuotaError extends BinderyError {
  override readonly status = 429;
  override readonly retryable = true;
}

/**
 * Refuses a launch of `repo` when the service or the repository already runs its share of
 * sessions (BinderHub's pod_quota and per_repo_quota, with its messages).
 */
export function checkSessionQuotas(
  quotas: Config['quotas'],
  running: readonly SessionRecord[],
  repo: string,
): void {
  if (quotas.maxSessions > 0 && running.length >= quotas.maxSessions) {
    throw new QuotaError('Too many users on this BinderHub! Try again soon.');
  }
  const sameRepo = running.filter((session) => session.repo === repo).length;
  if (quotas.maxSessionsPerRepo > 0 && sameRepo >= quotas.maxSessionsPerRepo) {
    throw new QuotaError(`Too many users running ${repo}! Try again soon.`);
  }
}
