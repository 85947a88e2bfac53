import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UnavailableError } from '../errors.js';

export interface RedisLockOptions {
  /** How long the lock outlives a holder that died holding it. @defaultValue 10000 */
  ttlMs?: number;
  /** How long to wait for another holder before giving up. @defaultValue 10000 */
  waitMs?: number;
  /** Pause between tries while another process holds the lock. @defaultValue 25 */
  pollMs?: number;
}

// Deletes the lock only when this holder still owns it (it may have expired and been retaken).
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/**
 * Runs `critical` while holding the Redis lock `key`, so that processes sharing one Redis take
 * turns. The lock expires after `ttlMs`, so a holder that died does not block the others for long.
 */
export async function withRedisLock<T>(
  redis: Redis,
  key: string,
  critical: () => Promise<T>,
  { ttlMs = 10_000, waitMs = 10_000, pollMs = 25 }: RedisLockOptions = {},
): Promise<T> {
  const token = randomUUID();
  const deadline = Date.now() + waitMs;
  while ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') {
    if (Date.now() > deadline) {
      throw new UnavailableError(`Another request held ${key} for ${waitMs} ms; try again.`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  try {
    return await critical();
  } finally {
    await redis.eval(RELEASE, 1, key, token);
  }
}
