import type { ContainerEngine } from '../engine/container-engine.js';
import type { RouteTable } from '../proxy/route-table.js';
import { removeSession } from './cull-sessions.js';
import type { SessionStore } from './session-store.js';

/**
 * Makes the records agree with the containers, at start: a record whose container is gone,
 * stopped or has no address is removed with its route; a session container of this store (its
 * `bindery.store` label) that neither a record nor a launch under way knows is removed, since
 * nobody holds its token; every live record's route points where the engine says its container
 * answers now.
 */
export async function reconcileSessions(deps: {
  engine: ContainerEngine;
  store: SessionStore;
  routes: RouteTable;
}): Promise<{ kept: string[]; removed: string[] }> {
  const ours = (await deps.engine.listSessions()).filter(
    (container) => container.labels['bindery.store'] === deps.store.prefix,
  );
  const containers = new Map(ours.map((container) => [container.name, container]));
  const kept: string[] = [];
  const removed: string[] = [];
  for (const session of await deps.store.all()) {
    const container = containers.get(session.name);
    containers.delete(session.name);
    const target = container?.running ? container.url : undefined;
    if (!target) {
      await removeSession(deps, session);
      removed.push(session.name);
      continue;
    }
    if (target !== session.target) await deps.store.save({ ...session, target });
    await deps.routes.set(session.name, { target });
    kept.push(session.name);
  }
  // A container whose launch is under way (in another web process) has no record yet.
  const launching = await deps.store.launchesUnderWay();
  for (const orphan of containers.values()) {
    if (launching.has(orphan.name)) continue;
    await deps.engine.removeContainer(orphan.id);
    removed.push(orphan.name);
  }
  return { kept, removed };
}
