import type { Config } from '../config.js';

/** When the culler will stop a session, as cullSessions decides it. */
export interface TimeLeft {
  /** ms until it is culled for being idle, if nothing uses it from now on. */
  idleMs: number;
  /** ms until it reaches BINDERY_MAX_AGE, whatever happens. */
  ageMs: number;
  /** The sooner of the two, and which one it is. */
  leftMs: number;
  reason: 'idle' | 'age';
}

/**
 * The time left before the culler stops a session: idle since the latest activity anyone saw
 * (the proxy's, Jupyter's, or its start) plus BINDERY_IDLE_TIMEOUT, or its start plus
 * BINDERY_MAX_AGE, whichever comes first. The culler runs once a minute, so it may come up to a
 * minute later, never sooner.
 */
export function sessionTimeLeft(
  session: { createdAt: number; lastActivity: readonly (number | undefined)[] },
  config: Pick<Config, 'idleTimeoutSeconds' | 'maxAgeSeconds'>,
  now: number,
): TimeLeft {
  const seen = Math.max(session.createdAt, ...session.lastActivity.map((at) => at ?? 0));
  const idleMs = Math.max(0, seen + config.idleTimeoutSeconds * 1000 - now);
  const ageMs = Math.max(0, session.createdAt + config.maxAgeSeconds * 1000 - now);
  return idleMs <= ageMs
    ? { idleMs, ageMs, leftMs: idleMs, reason: 'idle' }
    : { idleMs, ageMs, leftMs: ageMs, reason: 'age' };
}
