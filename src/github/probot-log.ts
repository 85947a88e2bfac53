import type { Logger } from 'pino';

/** What a log line keeps of a webhook event: which one it was, not its payload. */
function eventFields(event: unknown): unknown {
  if (typeof event !== 'object' || event === null) return event;
  const { id, name, payload } = event as { id?: unknown; name?: unknown; payload?: unknown };
  const { action } = (payload ?? {}) as { action?: unknown };
  return { id, name, ...(action !== undefined && { action }) };
}

/**
 * The service's logger as Probot gets it (`new Probot({ log })`, which adds `name: probot`):
 * the `github` component, with webhook events logged as their id, name and action. Probot logs
 * each received event at debug and a failed handler's error at error level, both carrying the
 * whole payload; errors are cut to their messages by the logger's own `err` serializer
 * (src/log/error-fields.ts), so either stays one short line (DESIGN §4.3).
 */
export function createProbotLog(log: Logger): Logger {
  return log.child({}, { serializers: { event: eventFields } });
}
