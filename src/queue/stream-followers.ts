import { ReplyError, type Redis } from 'ioredis';

/** One Redis stream entry as XREAD and XRANGE return it. */
export type StreamEntry = [id: string, fields: string[]];

interface Waiter {
  key: string;
  /** The id of the last entry this follower has; it wants the ones after. */
  cursor: string;
  resolve(entries: StreamEntry[]): void;
  reject(error: unknown): void;
}

/** Orders two decimal numbers without leading zeros: `text[start, end)` of each. */
function compareDecimals(
  a: string,
  aStart: number,
  aEnd: number,
  b: string,
  bStart: number,
  bEnd: number,
) {
  const byLength = aEnd - aStart - (bEnd - bStart);
  if (byLength !== 0) return byLength;
  for (let i = 0; i < aEnd - aStart; i++) {
    const byDigit = a.charCodeAt(aStart + i) - b.charCodeAt(bStart + i);
    if (byDigit !== 0) return byDigit;
  }
  return 0;
}

/**
 * Orders two stream ids (`<ms>-<seq>`). Without splitting them: the loop compares every
 * follower's cursor on every read, and 500 followers made splitting a visible share of its time.
 */
export function compareStreamIds(a: string, b: string): number {
  if (a === b) return 0;
  const aDash = a.includes('-') ? a.indexOf('-') : a.length;
  const bDash = b.includes('-') ? b.indexOf('-') : b.length;
  return (
    compareDecimals(a, 0, aDash, b, 0, bDash) ||
    compareDecimals(a, aDash + 1, a.length, b, bDash + 1, b.length)
  );
}

export interface StreamFollowersOptions {
  /** Longest one blocking read waits before it reads again. @defaultValue 5000 */
  blockMs?: number;
  /** Most entries one read returns per stream, so most a follower holds at once. @defaultValue 100 */
  count?: number;
  /**
   * Longest time reads may fail for want of Redis (a restart) while the followers wait for it;
   * past it, or on an error Redis answers, the followers end with the error. @defaultValue 60000
   */
  outageMs?: number;
}

/**
 * Follows any number of Redis streams for any number of followers on one connection: a
 * blocking read ties up its connection, and a connection per follower let 500 visitors watching
 * a build open 500 connections to Redis. One loop runs XREAD BLOCK over every stream some
 * follower waits on, from the oldest entry one of them still needs, and hands each follower
 * the entries after its own cursor. A follower that has not asked again (its client reads
 * slowly) is not read for, so it holds at most one read's entries; the stream in Redis is its
 * buffer. When a follower arrives whose entries the read under way does not cover, that read is
 * ended with CLIENT UNBLOCK and the next one covers it. The connection is opened with the first
 * follower and closed with the last.
 */
export class StreamFollowers {
  private readonly blockMs: number;
  private readonly count: number;
  private readonly outageMs: number;
  private readonly waiting = new Set<Waiter>();
  private followers = 0;
  private running = false;
  /** The read under way, stream key → the id it reads after. */
  private reading?: Map<string, string>;
  private readerId?: number;
  /** A waiter arrived that the read under way does not serve, or the last follower left. */
  private stale = false;
  private unblocking = false;
  private wakeLoop?: () => void;

  constructor(
    private readonly redis: Redis,
    { blockMs = 5_000, count = 100, outageMs = 60_000 }: StreamFollowersOptions = {},
  ) {
    this.blockMs = blockMs;
    this.count = count;
    this.outageMs = outageMs;
  }

  /**
   * The entries of stream `key` after `from`, in order, as they arrive; ends when `signal`
   * aborts, or when the caller stops iterating. Entries are read only while the caller waits
   * for the next one.
   */
  async *follow(key: string, from: string, signal?: AbortSignal): AsyncGenerator<StreamEntry> {
    if (signal?.aborted) return;
    this.followers++;
    try {
      let cursor = from;
      while (!signal?.aborted) {
        for (const entry of await this.next(key, cursor, signal)) {
          cursor = entry[0];
          yield entry;
        }
      }
    } finally {
      this.followers--;
      if (this.followers === 0) this.markStale();
    }
  }

  /** Entries of `key` after `cursor` (at least one); none once `signal` aborts. */
  private next(key: string, cursor: string, signal?: AbortSignal): Promise<StreamEntry[]> {
    return new Promise((resolve, reject) => {
      const settle = () => {
        this.waiting.delete(waiter);
        signal?.removeEventListener('abort', abort);
      };
      const waiter: Waiter = {
        key,
        cursor,
        resolve: (entries) => {
          settle();
          resolve(entries);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      const abort = () => waiter.resolve([]);
      if (signal?.aborted) return resolve([]);
      signal?.addEventListener('abort', abort, { once: true });
      this.waiting.add(waiter);
      if (!this.running) {
        this.running = true;
        void this.loop();
      } else if (this.wakeLoop) {
        this.wakeLoop();
      } else if (!this.covers(waiter)) {
        this.markStale();
      }
    });
  }

  /** Whether the read under way returns what `waiter` needs. */
  private covers(waiter: Waiter): boolean {
    const from = this.reading?.get(waiter.key);
    return from !== undefined && compareStreamIds(waiter.cursor, from) >= 0;
  }

  /** Ends the blocking read under way, so the loop reads again with what it now knows. */
  private markStale(): void {
    this.stale = true;
    this.wakeLoop?.();
    if (this.unblocking) return;
    this.unblocking = true;
    void (async () => {
      try {
        // UNBLOCK answers 0 when the read has not reached Redis yet (or has just returned):
        // try again until the loop has started a read that knows the new state.
        let unblocked: Map<string, string> | undefined;
        while (this.stale && this.running) {
          const read = this.reading;
          if (read && read !== unblocked && this.readerId !== undefined) {
            const done = await this.redis.client('UNBLOCK', this.readerId).catch(() => 0);
            // That read returns now; the next is made from every follower waiting by then.
            if (Number(done) === 1) unblocked = read;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        this.unblocking = false;
      }
    })();
  }

  private async loop(): Promise<void> {
    const reader = this.redis.duplicate();
    /** Since when reads fail for want of Redis. */
    let failingSince: number | undefined;
    try {
      while (this.followers > 0 || this.waiting.size > 0) {
        if (this.waiting.size === 0) {
          // Followers busy with what they were given: nothing to read for until one asks.
          await new Promise<void>((resolve) => (this.wakeLoop = resolve));
          this.wakeLoop = undefined;
          continue;
        }
        const from = new Map<string, string>();
        for (const { key, cursor } of this.waiting) {
          const oldest = from.get(key);
          if (oldest === undefined || compareStreamIds(cursor, oldest) < 0) from.set(key, cursor);
        }
        this.reading = from;
        this.stale = false;
        const keys = [...from.keys()];
        let reply: [key: string, entries: StreamEntry[]][] | null;
        try {
          // A reconnected reader has a new id: UNBLOCK needs the current one.
          this.readerId ??= Number(await reader.client('ID'));
          reply = (await reader.xread(
            'COUNT',
            this.count,
            'BLOCK',
            this.blockMs,
            'STREAMS',
            ...keys,
            ...keys.map((key) => from.get(key)!),
          )) as [key: string, entries: StreamEntry[]][] | null;
          failingSince = undefined;
        } catch (error) {
          // Redis away (restarting): the followers wait for it, as the build worker does, and
          // go on from where they were; the reader reconnects by itself.
          if (error instanceof ReplyError) throw error;
          failingSince ??= Date.now();
          if (Date.now() - failingSince > this.outageMs) throw error;
          this.reading = undefined;
          this.readerId = undefined;
          await new Promise((resolve) => setTimeout(resolve, 250));
          continue;
        }
        this.reading = undefined;
        for (const [key, entries] of reply ?? []) this.deliver(key, from.get(key)!, entries);
      }
    } catch (error) {
      for (const waiter of [...this.waiting]) waiter.reject(error);
    } finally {
      this.reading = undefined;
      this.readerId = undefined;
      this.running = false;
      reader.disconnect();
      // A follower that asked while the loop was failing starts the next one.
      if (this.waiting.size > 0) {
        this.running = true;
        void this.loop();
      }
    }
  }

  /** Hands the entries of `key` read after `from` to each follower they serve. */
  private deliver(key: string, from: string, entries: StreamEntry[]): void {
    if (entries.length === 0) return;
    for (const waiter of [...this.waiting]) {
      // A follower that needs entries from before `from` waits for a read that has them.
      if (waiter.key !== key || compareStreamIds(waiter.cursor, from) < 0) continue;
      const after =
        waiter.cursor === from
          ? entries
          : entries.filter(([id]) => compareStreamIds(id, waiter.cursor) > 0);
      if (after.length > 0) waiter.resolve(after);
    }
  }
}
