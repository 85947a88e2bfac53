import type { Config } from '../config.js';
import { BinderyError } from '../errors.js';
import type { FullQuota } from './session-slots.js';

/** A launch refused by a quota: BinderHub answers these with 429 and these words. */
export class QuotaError extends BinderyError {
  override readonly status = 429;
  override readonly retryable = true;
}

/**
 * The sentence for a launch of `repo` refused because `full` is (BinderHub's pod_quota and
 * per_repo_quota messages; the per-client limit is Bindery's own).
 */
export function quotaError(full: FullQuota, quotas: Config['quotas'], repo: string): QuotaError {
  switch (full) {
    case 'total':
      return new QuotaError('Too many users on this BinderHub! Try again soon.');
    case 'repo':
      return new QuotaError(`Too many users running ${repo}! Try again soon.`);
    case 'client': {
      const most = quotas.maxSessionsPerClient;
      return new QuotaError(
        `You already have ${most} session${most === 1 ? '' : 's'} running here, the most one ` +
          'address may have at once. Close one (File > Shut Down) or wait for one to end, then try again.',
      );
    }
  }
}
