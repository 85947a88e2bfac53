import { Redis } from 'ioredis';
import { UnavailableError } from './errors.js';
import type { Logger } from './log/create-log.js';

/** Where a Redis URL points, without its password. */
const redisAddress = (url: string) => {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || 6379}`;
};

/**
 * The service's Redis connection, answering: producers and web requests fail fast while Redis
 * is away (`maxRetriesPerRequest: 1`). Rejects with one sentence when Redis does not answer at
 * start; later outages are logged once each, not as ioredis's stack per reconnect attempt.
 */
export async function connectRedis(url: string, log: Logger): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let lastError: string | undefined;
  let started = false;
  redis.on('error', (error: Error) => {
    if (started && error.message !== lastError) {
      log.warn(`Redis at ${redisAddress(url)} does not answer: ${error.message}`);
    }
    lastError = error.message;
  });
  redis.on('ready', () => (lastError = undefined));
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new UnavailableError(
      `Redis at ${redisAddress(url)} does not answer (${lastError ?? (error as Error).message}); start it, or set REDIS_URL to where it runs.`,
    );
  }
  started = true;
  return redis;
}
