/**
 * Answers kept for a few seconds, per key, for routes anyone can call as often as they like:
 * while an answer is fresh it is served as it is, and callers asking while it is being worked
 * out share that one piece of work. Holds at most `maxEntries` answers, dropping the oldest.
 */
export class AnswerCache<T> {
  private readonly answers = new Map<string, { value: T; at: number }>();
  private readonly pending = new Map<string, Promise<T>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor({
    ttlMs,
    maxEntries = 1_000,
    now = Date.now,
  }: {
    /** How long an answer stays fresh; 0 keeps none, and only work in flight is shared. */
    ttlMs: number;
    /** Most answers kept. @defaultValue 1000 */
    maxEntries?: number;
    now?: () => number;
  }) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
    this.now = now;
  }

  /** The fresh answer for `key`, or the one being worked out; undefined when neither. */
  peek(key: string): T | Promise<T> | undefined {
    const kept = this.answers.get(key);
    if (kept && this.now() - kept.at < this.ttlMs) return kept.value;
    if (kept) this.answers.delete(key);
    return this.pending.get(key);
  }

  /** Works out `key`'s answer with `compute`, keeps it, and shares it with anyone asking meanwhile. */
  compute(key: string, compute: () => Promise<T>): Promise<T> {
    const running = this.pending.get(key);
    if (running) return running;
    const answer = compute()
      .then((value) => {
        // With no time to live the cache only shares work in flight.
        if (this.ttlMs <= 0) return value;
        this.answers.delete(key);
        this.answers.set(key, { value, at: this.now() });
        for (const oldest of this.answers.keys()) {
          if (this.answers.size <= this.maxEntries) break;
          this.answers.delete(oldest);
        }
        return value;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, answer);
    return answer;
  }
}
