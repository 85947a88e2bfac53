import type { Logger } from '../log/create-log.js';

/** Told that a session saw traffic at `at` (ms since the epoch); may return a promise. */
export type ActivityListener = (session: string, at: number) => void | Promise<void>;

/** Past this many sessions remembered, entries older than the interval are dropped. */
const PRUNE_ABOVE = 1_000;

/**
 * Passes activity on at most once per `intervalMs` per session (the first of a burst goes
 * through at once): the proxy sees every request and WebSocket frame, the culler only needs
 * to know a session was used in the last minutes. A listener that throws or rejects is logged
 * and never breaks the traffic that caused it.
 */
export function throttleActivity(
  listener: ActivityListener,
  options: { intervalMs: number; now: () => number; log: Logger },
): (session: string) => void {
  const { intervalMs, now, log } = options;
  const lastReported = new Map<string, number>();
  const failed = (error: unknown) =>
    log.warn(`recording activity failed: ${(error as Error)?.message ?? String(error)}`);

  return (session) => {
    const at = now();
    const last = lastReported.get(session);
    if (last !== undefined && at - last < intervalMs) return;
    lastReported.set(session, at);
    if (lastReported.size > PRUNE_ABOVE) {
      for (const [name, time] of lastReported) {
        if (at - time >= intervalMs) lastReported.delete(name);
      }
    }
    try {
      const result = listener(session, at);
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  };
}
