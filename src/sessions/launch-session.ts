import type { Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import type { RouteTable } from '../proxy/route-table.js';
import { sessionUrl } from '../proxy/session-host.js';
import type { Sandbox } from '../sandbox/prepare-sandbox.js';
import type { BinderLinks } from '../repos/binder-links.js';
import { checkSessionQuotas } from './quotas.js';
import type { SessionStore } from './session-store.js';
import { startSession, waitForJupyter } from './start-session.js';

export interface LaunchDeps {
  engine: ContainerEngine;
  config: Config;
  store: SessionStore;
  routes: RouteTable;
  /** Sessions start only inside it (src/sandbox). */
  sandbox: Pick<Sandbox, 'network' | 'assertReady'>;
}

export interface LaunchRequest {
  image: string;
  /** `<provider>/<spec without ref>`. */
  repo: string;
  links: BinderLinks;
}

export interface LaunchedSession {
  name: string;
  /** The public URL of the session's Jupyter, ending in `/`. */
  url: string;
  token: string;
}

/**
 * Starts a session for a built image, in the sandbox: checks the quotas, starts the container with the
 * BINDER_* variables BinderHub sets, waits for Jupyter, then routes `/user/<name>/` to it and
 * records it. Nothing is left behind when a step fails.
 */
export async function launchSession(
  deps: LaunchDeps,
  request: LaunchRequest,
): Promise<LaunchedSession> {
  const { engine, config, store, routes } = deps;
  deps.sandbox.assertReady();
  checkSessionQuotas(config.quotas, await store.all(), request.repo);
  const session = await startSession({
    engine,
    config,
    imageName: request.image,
    repoLabel: request.repo,
    network: deps.sandbox.network,
    labels: { 'bindery.store': store.prefix },
    env: {
      BINDER_REPO_URL: request.links.repoUrl,
      BINDER_REF_URL: request.links.refUrl,
      BINDER_LAUNCH_HOST: request.links.launchHost,
      BINDER_REQUEST: request.links.request,
      BINDER_PERSISTENT_REQUEST: request.links.persistentRequest,
    },
  });
  const { name } = session.container;
  const target = `http://${session.container.address}:8888`;
  try {
    await waitForJupyter(session.url, session.token);
    await routes.set(name, { target });
    await store.save({
      name,
      containerId: session.container.id,
      image: request.image,
      repo: request.repo,
      target,
      token: session.token,
      createdAt: Date.now(),
    });
  } catch (error) {
    await routes.remove(name).catch(() => {});
    await engine.removeContainer(session.container.id).catch(() => {});
    throw error;
  }
  return { name, url: sessionUrl(config, name), token: session.token };
}
