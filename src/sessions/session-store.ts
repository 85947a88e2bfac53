import type { Redis } from 'ioredis';
import { CONFIRM_SLOT, RESERVE_SLOT, TOUCH_LATEST, type FullQuota } from './session-slots.js';

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
  /** Who launched it (a clientKey), for the per-client limit; absent for API token holders. */
  client?: string;
}

/** A launch under way, counted against the quotas until it becomes a session or fails. */
export interface SlotRequest {
  /** The session's name, chosen before its container starts. */
  name: string;
  repo: string;
  /** A clientKey; undefined is not counted per client (API token holders). */
  client?: string;
  limits: { maxSessions: number; maxSessionsPerRepo: number; maxSessionsPerClient: number };
  /** How long the reservation holds if its launch never ends (its process died). */
  leaseMs: number;
}

/**
 * Session records in Redis: one hash of records by name, and one of last-activity times (the
 * proxy touches it often; records change rarely). Shared by every web process.
 */
export class SessionStore {
  private readonly recordsKey: string;
  private readonly activityKey: string;
  private readonly pendingKey: string;

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
    this.pendingKey = `${prefix}:session-launches`;
  }

  /**
   * Counts the sessions and the launches under way against the limits and, when one more
   * fits, reserves its slot — in one step, so launches at once cannot all see room for
   * themselves. Returns the quota that is full, or undefined when the slot is reserved.
   */
  async reserve(slot: SlotRequest): Promise<FullQuota | undefined> {
    const { limits } = slot;
    const answer = (await this.redis.eval(
      RESERVE_SLOT,
      2,
      this.recordsKey,
      this.pendingKey,
      slot.name,
      slot.repo,
      slot.client ?? '',
      limits.maxSessions,
      limits.maxSessionsPerRepo,
      limits.maxSessionsPerClient,
      slot.leaseMs,
    )) as string;
    return answer === 'ok' ? undefined : (answer as FullQuota);
  }

  /** Names of the sessions whose launch is under way (reserved, not yet recorded). */
  async launchesUnderWay(): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(this.pendingKey));
  }

  /** Gives back a reservation whose launch failed. */
  async release(name: string): Promise<void> {
    await this.redis.hdel(this.pendingKey, name);
  }

  /**
   * Records a launched session in place of its reservation. False when the reservation was
   * gone (its lease ran out): the caller must then stop the session, whose slot may be taken.
   */
  async confirm(record: SessionRecord): Promise<boolean> {
    const done = await this.redis.eval(
      CONFIRM_SLOT,
      3,
      this.recordsKey,
      this.pendingKey,
      this.activityKey,
      record.name,
      JSON.stringify(record),
      String(record.createdAt),
    );
    return done === 1;
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

  /**
   * Records activity at `at` (ms), keeping the latest of what was known: compared and set in
   * one step, since web processes touching at once would otherwise write an older time last.
   */
  async touch(name: string, at: number): Promise<void> {
    await this.redis.eval(TOUCH_LATEST, 1, this.activityKey, name, at);
  }

  /** The last activity the proxy or the culler recorded, in ms. */
  async lastActivity(name: string): Promise<number | undefined> {
    const value = await this.redis.hget(this.activityKey, name);
    return value === null ? undefined : Number(value);
  }
}
