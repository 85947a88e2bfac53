import type { Redis } from 'ioredis';

/** What Bindery remembers of a running session; the container is the truth, this the index. */
export interface SessionRecord {
  name: string;
  containerId: string;
  image: string;
  /** `<provider>/<spec without ref>`, the `bindery.repo` label: per-repository quotas count it. */
  repo: string;
  /** Where the proxy sends `/user/<name>/`. */
  target: string;
  token: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/**
 * Session records in Redis: one hash of records by name, and one of last-activity times (the
 * proxy touches it often; records change rarely). Shared by every web process.
 */
export class SessionStore {
  private readonly recordsKey: string;
  private readonly activityKey: string;

  /**
   * @param prefix Redis key prefix; also the `bindery.store` label of this store's containers,
   *   so several services (or tests) on one Docker host never reconcile each other's sessions.
   */
  constructor(
    private readonly redis: Redis,
    readonly prefix = 'bindery',
  ) {
    this.recordsKey = `${prefix}:sessions`;
    this.activityKey = `${prefix}:session-activity`;
  }

  async save(record: SessionRecord): Promise<void> {
    await this.redis
      .multi()
      .hset(this.recordsKey, record.name, JSON.stringify(record))
      .hset(this.activityKey, record.name, String(record.createdAt))
      .exec();
  }

  async get(name: string): Promise<SessionRecord | undefined> {
    const text = await this.redis.hget(this.recordsKey, name);
    return text ? (JSON.parse(text) as SessionRecord) : undefined;
  }

  async all(): Promise<SessionRecord[]> {
    const records = await this.redis.hvals(this.recordsKey);
    return records.map((text) => JSON.parse(text) as SessionRecord);
  }

  async remove(name: string): Promise<void> {
    await this.redis.multi().hdel(this.recordsKey, name).hdel(this.activityKey, name).exec();
  }

  /** Records activity at `at` (ms), keeping the latest of what was known. */
  async touch(name: string, at: number): Promise<void> {
    const known = Number(await this.redis.hget(this.activityKey, name));
    if (!(known >= at)) await this.redis.hset(this.activityKey, name, String(at));
  }

  /** The last activity the proxy or the culler recorded, in ms. */
  async lastActivity(name: string): Promise<number | undefined> {
    const value = await this.redis.hget(this.activityKey, name);
    return value === null ? undefined : Number(value);
  }
}
