import { createHash, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { BinderyError, ForbiddenError } from '../errors.js';
import type { RepoSpec } from '../repos/repo-spec.js';

export class RateLimitError extends BinderyError {
  override readonly status = 429;
  override readonly retryable = true;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Whether `authorization` (`Bearer <token>` or `token <token>`) carries one of `tokens`.
 * Compared as SHA-256 digests in constant time, so neither the token nor its length leaks.
 */
export function hasApiToken(authorization: string | undefined, tokens: readonly string[]): boolean {
  const presented = /^(?:bearer|token)\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!presented) return false;
  const candidate = digest(presented);
  return tokens.reduce((found, token) => timingSafeEqual(digest(token), candidate) || found, false);
}

/** Refuses specs the operator banned, or that no allowed pattern matches. */
export function checkSpecAllowed(quotas: Config['quotas'], spec: RepoSpec, path: string): void {
  const subject = `${spec.provider}/${path}`;
  if (quotas.bannedSpecs.some((pattern) => pattern.test(subject))) {
    throw new ForbiddenError(`${spec.repoLabel} is not allowed on this service.`);
  }
  if (
    quotas.allowedSpecs.length > 0 &&
    !quotas.allowedSpecs.some((pattern) => pattern.test(subject))
  ) {
    throw new ForbiddenError(
      `${spec.repoLabel} is not among the repositories this service launches.`,
    );
  }
}

/**
 * Counts a launch from `clientIp` in the minute since its first counted one (in Redis, so every
 * web process shares the count) and refuses it past `perMinute`.
 */
export async function checkLaunchRate(
  redis: Redis,
  clientIp: string,
  perMinute: number,
  namespace = 'bindery',
): Promise<void> {
  if (perMinute <= 0) return;
  // A window that opens with the client's first launch, so two launches a second apart are
  // never split across two calendar minutes.
  const key = `${namespace}:launch-rate:${clientIp}`;
  const [, [, count]] = (await redis.multi().set(key, 0, 'EX', 60, 'NX').incr(key).exec()) as [
    unknown,
    [unknown, number],
  ];
  if (count > perMinute) {
    throw new RateLimitError(
      `Too many launches from ${clientIp} (more than ${perMinute} a minute). Wait a minute, or use an API token.`,
    );
  }
}
