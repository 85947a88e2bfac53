import type { Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import type { RouteTable } from '../proxy/route-table.js';
import type { SessionRecord, SessionStore } from './session-store.js';

export interface CullDeps {
  engine: ContainerEngine;
  store: SessionStore;
  routes: RouteTable;
  config: Pick<Config, 'idleTimeoutSeconds' | 'maxAgeSeconds'>;
  now?: () => number;
}

/** How far ahead of the culler's clock a reported time may be and still be read as "now". */
const CLOCK_SKEW_MS = 60_000;
/** More than any /api/status Jupyter sends; a session cannot make the culler buffer more. */
const STATUS_MAX_BYTES = 64 * 1024;

/**
 * Reads Jupyter's `last_activity` (an ISO 8601 time) from an /api/status body, in ms. The
 * session writes that body, so anything else is no answer: not a string, not a date, or later
 * than `now` (beyond clock skew) — a time in the future would otherwise keep it alive forever.
 */
export function parseLastActivity(body: unknown, now: number): number | undefined {
  const last = (body as { last_activity?: unknown } | null)?.last_activity;
  if (typeof last !== 'string' || !/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})$/.test(last)) {
    return undefined;
  }
  const at = Date.parse(last);
  if (!Number.isFinite(at) || at > now + CLOCK_SKEW_MS) return undefined;
  return Math.min(at, now);
}

/** The body as text, or undefined (and the rest unread) past `maxBytes`. */
async function readBounded(response: Response, maxBytes: number): Promise<string | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream: the rest is never read.
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Jupyter's own idea of the session's last activity (kernels included), in ms. */
export async function jupyterLastActivity(
  session: SessionRecord,
  now: number,
): Promise<number | undefined> {
  try {
    const response = await fetch(`${session.target}/user/${session.name}/api/status`, {
      headers: { Authorization: `token ${session.token}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) return undefined;
    const text = await readBounded(response, STATUS_MAX_BYTES);
    return text === undefined ? undefined : parseLastActivity(JSON.parse(text), now);
  } catch {
    return undefined;
  }
}

/** Stops and forgets one session: container, route and record. */
export async function removeSession(
  deps: Omit<CullDeps, 'config'>,
  session: SessionRecord,
): Promise<void> {
  await deps.routes.remove(session.name);
  await deps.engine.removeContainer(session.containerId);
  await deps.store.remove(session.name);
}

/**
 * Removes sessions idle longer than BINDERY_IDLE_TIMEOUT (the later of the proxy's and
 * Jupyter's last activity; a session whose Jupyter gives no usable answer is idle since the
 * proxy last saw a request for it) or older than BINDERY_MAX_AGE. Returns the names it removed.
 */
export async function cullSessions(deps: CullDeps): Promise<string[]> {
  const now = (deps.now ?? Date.now)();
  const culled: string[] = [];
  for (const session of await deps.store.all()) {
    const tooOld = now - session.createdAt > deps.config.maxAgeSeconds * 1000;
    let idle = false;
    if (!tooOld) {
      const seen = Math.max(
        session.createdAt,
        (await deps.store.lastActivity(session.name)) ?? 0,
        (await jupyterLastActivity(session, now)) ?? 0,
      );
      idle = now - seen > deps.config.idleTimeoutSeconds * 1000;
    }
    if (tooOld || idle) {
      await removeSession(deps, session);
      culled.push(session.name);
    }
  }
  return culled;
}
