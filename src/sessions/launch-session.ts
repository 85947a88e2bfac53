import type { Config } from '../config.js';
import { UnavailableError } from '../errors.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { ImageStore } from '../engine/image-store.js';
import type { RouteTable } from '../proxy/route-table.js';
import { sessionUrl } from '../proxy/session-host.js';
import type { Sandbox } from '../sandbox/prepare-sandbox.js';
import { SandboxError } from '../sandbox/sandbox-error.js';
import type { BinderLinks } from '../repos/binder-links.js';
import { quotaError } from './quotas.js';
import type { SessionStore } from './session-store.js';
import { newSessionName, startSession, waitForJupyter } from './start-session.js';

/**
 * How long a launch's quota reservation holds before anyone may take its slot: longer than a
 * launch takes (Jupyter gets 30 s), short enough that a web process dying mid-launch does not
 * shrink the service for long.
 */
const RESERVATION_LEASE_MS = 300_000;

/**
 * How long Jupyter may take to answer in a new session. A busy host (builds running, a burst
 * of launches) starts JupyterLab in well over 30 s; KubeSpawner, behind BinderHub, waits 300 s.
 */
const JUPYTER_START_TIMEOUT_MS = 120_000;

export interface LaunchDeps {
  engine: ContainerEngine;
  config: Config;
  store: SessionStore;
  routes: RouteTable;
  /** Sessions start only inside it (src/sandbox), checked again at each launch. */
  sandbox: Pick<Sandbox, 'network' | 'check'>;
}

export interface LaunchRequest {
  image: string;
  /** `<provider>/<spec without ref>`. */
  repo: string;
  links: BinderLinks;
  /** Who asks (a clientKey), for the per-client limit; undefined for API token holders. */
  client?: string;
}

export interface LaunchedSession {
  name: string;
  /** The public URL of the session's Jupyter, ending in `/`. */
  url: string;
  token: string;
}

/**
 * Starts a session for a built image, in the sandbox: reserves a slot under the quotas (total,
 * per repository, per client) in one atomic step, starts the container with the
 * BINDER_* variables BinderHub sets, waits for Jupyter, then routes `/user/<name>/` to it and
 * records it. Nothing is left behind when a step fails.
 */
export async function launchSession(
  deps: LaunchDeps,
  request: LaunchRequest,
): Promise<LaunchedSession> {
  const { engine, config, store, routes } = deps;
  // Read from the host at each launch, not only at start and by /health: a rule changed on the
  // host since then (an ACCEPT put first in the chain) let sessions start outside the firewall.
  const { ok, problems, avoid } = await deps.sandbox.check();
  if (!ok) {
    throw new SandboxError(
      `Sessions are refused: the sandbox's firewall is not in place (${problems.join('; ')}). ` +
        'Restart Bindery as root to install it again, or set BINDERY_SANDBOX_OPTOUT=1 for development only.',
    );
  }
  // A host without the image (it was built on another, or pruned here) pulls it from the
  // registry, before a slot is taken for the time the pull lasts.
  await new ImageStore(engine, config).ensureLocal(request.image);
  const name = newSessionName();
  const full = await store.reserve({
    name,
    repo: request.repo,
    client: request.client,
    limits: config.quotas,
    leaseMs: RESERVATION_LEASE_MS,
  });
  if (full) throw quotaError(full, config.quotas, request.repo);
  let containerId: string | undefined;
  try {
    const session = await startSession({
      engine,
      config,
      name,
      imageName: request.image,
      repoLabel: request.repo,
      network: deps.sandbox.network,
      avoidHosts: avoid,
      labels: { 'bindery.store': store.prefix },
      env: {
        BINDER_REPO_URL: request.links.repoUrl,
        BINDER_REF_URL: request.links.refUrl,
        BINDER_LAUNCH_HOST: request.links.launchHost,
        BINDER_REQUEST: request.links.request,
        BINDER_PERSISTENT_REQUEST: request.links.persistentRequest,
      },
    });
    containerId = session.container.id;
    const target = session.container.url;
    await waitForJupyter(session.url, session.token, JUPYTER_START_TIMEOUT_MS);
    await routes.set(name, { target });
    const confirmed = await store.confirm({
      name,
      containerId,
      image: request.image,
      repo: request.repo,
      ...(request.client === undefined ? {} : { client: request.client }),
      target,
      token: session.token,
      createdAt: Date.now(),
    });
    if (!confirmed) {
      throw new UnavailableError('Starting the session took too long; try again.');
    }
    return { name, url: sessionUrl(config, name), token: session.token };
  } catch (error) {
    await store.release(name).catch(() => {});
    await routes.remove(name).catch(() => {});
    // By name too: a container created but never started has no id here yet.
    await engine.removeContainer(containerId ?? name).catch(() => {});
    throw error;
  }
}
