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

/** Jupyter's own idea of the session's last activity (kernels included), in ms. */
async function jupyterLastActivity(session: SessionRecord): Promise<number | undefined> {
  try {
    const response = await fetch(`${session.target}/user/${session.name}/api/status`, {
      headers: { Authorization: `token ${session.token}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) return undefined;
    const { last_activity: last } = (await response.json()) as { last_activity?: string };
    return last ? Date.parse(last) : undefined;
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
 * Jupyter's last activity) or older than BINDERY_MAX_AGE. Returns the names it removed.
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
        (await jupyterLastActivity(session)) ?? 0,
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
