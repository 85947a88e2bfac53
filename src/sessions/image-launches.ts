import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { UnavailableError } from '../errors.js';
import { CLAIM_IMAGE, HOLD_IMAGE } from './image-holds.js';

/** How long a claim holds if the pruner dies holding it; a removal takes well under this. */
const CLAIM_LEASE_MS = 60_000;
/** How long a launch waits for the pruner to finish with its image. */
const CLAIM_WAIT_MS = CLAIM_LEASE_MS + 5_000;

/**
 * How long a launch's hold on its image lasts if its process dies: a fetch, a build and a
 * session start (Jupyter gets 120 s), with room to spare.
 */
export const launchHoldMs = (config: Pick<Config, 'git' | 'build'>) =>
  config.git.cloneTimeoutMs + config.build.timeoutMs + 600_000;

/**
 * When each image was last launched, and which images launches or the pruner are working on,
 * in Redis under the service's key prefix. Shared by web processes (launches) and the culler
 * and build workers (the pruner).
 */
export class ImageLaunches {
  private readonly holdsKey: string;
  private readonly claimsKey: string;
  private readonly launchedKey: string;

  constructor(
    private readonly redis: Redis,
    prefix = 'bindery',
  ) {
    this.holdsKey = `${prefix}:image-holds`;
    this.claimsKey = `${prefix}:image-claims`;
    this.launchedKey = `${prefix}:image-launched`;
  }

  /**
   * Records a launch of `image` now and keeps the pruner off it until the returned function
   * is called (or `leaseMs` passes). Call it before looking whether the image exists: when the
   * pruner is removing it, this waits until it is gone, and the launch then builds it again.
   */
  async hold(image: string, leaseMs: number): Promise<() => Promise<void>> {
    const id = randomUUID();
    const deadline = Date.now() + CLAIM_WAIT_MS;
    const keys = [this.holdsKey, this.claimsKey, this.launchedKey];
    while ((await this.redis.eval(HOLD_IMAGE, 3, ...keys, image, id, leaseMs)) !== 1) {
      if (Date.now() > deadline) {
        throw new UnavailableError(`${image} is being removed and did not go; try again.`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return async () => {
      await this.redis.hdel(this.holdsKey, id);
    };
  }

  /**
   * Claims `image` for removal; false when a launch holds it. Call `release` after removing
   * it (or deciding not to).
   */
  async claim(image: string): Promise<boolean> {
    const claimed = await this.redis.eval(
      CLAIM_IMAGE,
      2,
      this.holdsKey,
      this.claimsKey,
      image,
      CLAIM_LEASE_MS,
    );
    return claimed === 1;
  }

  /** Ends a claim; `removed` also forgets the image's launches, so a rebuild counts afresh. */
  async release(image: string, removed: boolean): Promise<void> {
    const step = this.redis.multi().hdel(this.claimsKey, image);
    if (removed) step.hdel(this.launchedKey, image);
    await step.exec();
  }

  /** Forgets the launches of images that are gone (removed by hand, say). */
  async forget(images: string[]): Promise<void> {
    if (images.length > 0) await this.redis.hdel(this.launchedKey, ...images);
  }

  /** The last launch of each image launched, in ms since the epoch. */
  async lastLaunches(): Promise<Map<string, number>> {
    const times = await this.redis.hgetall(this.launchedKey);
    return new Map(Object.entries(times).map(([image, at]) => [image, Number(at)]));
  }

  /** Images with a launch under way (a hold not yet released, or its lease not yet run out). */
  async held(now = Date.now()): Promise<Set<string>> {
    const holds = Object.values(await this.redis.hgetall(this.holdsKey));
    return new Set(
      holds
        .map((text) => JSON.parse(text) as { image: string; expiresAt: number })
        .filter((hold) => hold.expiresAt >= now)
        .map((hold) => hold.image),
    );
  }
}
