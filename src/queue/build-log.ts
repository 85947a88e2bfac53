import type { Redis } from 'ioredis';
import type { BuildEvent } from '../build-event.js';
import { compareStreamIds, StreamFollowers, type StreamEntry } from './stream-followers.js';

/**
 * The terminal rule: `built` and `failed` end a build's log. Only the build worker writes them,
 * once per build and last (it holds back the builder's own `built` and writes it at the end),
 * so a follower may stop at the first one it reads.
 */
export const isFinalEvent = (event: BuildEvent): boolean =>
  event.phase === 'built' || event.phase === 'failed';

/** A log event with its Redis stream entry id, which pages use as their event stream's `id`. */
export interface BuildLogEntry {
  id: string;
  event: BuildEvent;
}

/** A Redis stream entry id (`<ms>-<seq>`), as a reconnecting client sends it back. */
export const isStreamId = (text: string): boolean => /^\d{1,20}-\d{1,20}$/.test(text);

/** The Redis stream that holds the log of `imageName`'s build. */
export const buildLogKey = (imageName: string) => `build:${imageName}`;

export interface BuildLogOptions {
  /** Most entries one log keeps; the oldest are dropped first. @defaultValue 20000 */
  maxEntries?: number;
  /** Seconds a log lives after its last entry. @defaultValue 604800 (7 days) */
  ttlSeconds?: number;
  /** Longest one blocking read of the followers waits before it reads again. @defaultValue 5000 */
  blockMs?: number;
}

/** Reads the event back from a stream entry's fields (`event`, its JSON). */
function decode([, fields]: StreamEntry): BuildEvent {
  const at = fields.indexOf('event');
  return JSON.parse(fields[at + 1] ?? '{}') as BuildEvent;
}

/**
 * Build logs in Redis streams, one per image: capped and expiring, so that a client arriving
 * mid-build replays the log from its start and then follows it live, and a finished log stays
 * readable (the build log page, the GitHub check run) until it expires.
 */
export class BuildLog {
  private readonly maxEntries: number;
  private readonly ttlSeconds: number;
  private readonly followers: StreamFollowers;

  /**
   * `redis` carries the appends and reads; the followers share one duplicate of it for their
   * blocking reads, open while anyone follows.
   */
  constructor(
    private readonly redis: Redis,
    { maxEntries = 20_000, ttlSeconds = 7 * 24 * 3600, blockMs = 5_000 }: BuildLogOptions = {},
  ) {
    this.maxEntries = maxEntries;
    this.ttlSeconds = ttlSeconds;
    this.followers = new StreamFollowers(redis, { blockMs });
  }

  /** Adds `event` to the end of `imageName`'s log and restarts the log's time to live. */
  async append(imageName: string, event: BuildEvent): Promise<void> {
    const key = buildLogKey(imageName);
    // An exact MAXLEN, not `~`: approximate trimming keeps up to a whole stream node (100
    // entries) past the cap, and the cap is a promise about memory. Dropping one entry is cheap.
    const replies = await this.redis
      .multi()
      .xadd(key, 'MAXLEN', this.maxEntries, '*', 'event', JSON.stringify(event))
      .expire(key, this.ttlSeconds)
      .exec();
    const failure = replies?.find(([error]) => error)?.[0];
    if (failure) throw failure;
  }

  /** The whole stored log of `imageName`, oldest first; empty when there is none. */
  async read(imageName: string): Promise<BuildEvent[]> {
    const entries = (await this.redis.xrange(buildLogKey(imageName), '-', '+')) as StreamEntry[];
    return entries.map(decode);
  }

  /** The whole stored log of `imageName` with each entry's id, oldest first. */
  async entries(imageName: string): Promise<BuildLogEntry[]> {
    const entries = (await this.redis.xrange(buildLogKey(imageName), '-', '+')) as StreamEntry[];
    return entries.map((entry) => ({ id: entry[0], event: decode(entry) }));
  }

  /** The newest entry of `imageName`'s log: its final event once the build has ended. */
  async last(imageName: string): Promise<BuildEvent | undefined> {
    const newest = await this.newestEntry(imageName);
    return newest && decode(newest);
  }

  private async newestEntry(imageName: string): Promise<StreamEntry | undefined> {
    const [newest] = (await this.redis.xrevrange(
      buildLogKey(imageName),
      '+',
      '-',
      'COUNT',
      1,
    )) as StreamEntry[];
    return newest;
  }

  /** Deletes `imageName`'s log, before a new build of the image starts. */
  async clear(imageName: string): Promise<void> {
    await this.redis.del(buildLogKey(imageName));
  }

  /**
   * `imageName`'s log from its first entry, then live as the build writes it. Ends after the
   * final event (`built` or `failed`), or when `signal` aborts. A log that does not exist yet is
   * waited for. Every follower of this BuildLog reads on one shared connection
   * (StreamFollowers), and entries are read only as fast as the follower takes them.
   */
  async *follow(imageName: string, signal?: AbortSignal): AsyncGenerator<BuildEvent> {
    for await (const { event } of this.followFrom(imageName, '0-0', signal)) yield event;
  }

  /**
   * As `follow`, from the entry after `from` (a stream id a reconnecting page saw last), each
   * event with its id. Ends at once when the log's final event is at or before `from`: the
   * reader has seen the whole build.
   */
  async *followFrom(
    imageName: string,
    from: string,
    signal?: AbortSignal,
  ): AsyncGenerator<BuildLogEntry> {
    if (from !== '0-0') {
      const last = await this.newestEntry(imageName);
      if (last && isFinalEvent(decode(last)) && compareStreamIds(last[0], from) <= 0) return;
    }
    for await (const entry of this.followers.follow(buildLogKey(imageName), from, signal)) {
      const event = decode(entry);
      yield { id: entry[0], event };
      if (isFinalEvent(event)) return;
    }
  }
}
