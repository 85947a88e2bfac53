import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { ContainerEngine, RunningSession } from '../engine/container-engine.js';
import { UnavailableError } from '../errors.js';
import { formatDuration } from '../format-duration.js';

export interface StartedSession {
  container: RunningSession;
  /** Base URL of the Jupyter server at the engine's address for it, ending in `/`. */
  url: string;
  token: string;
}

export interface StartSessionOptions {
  engine: ContainerEngine;
  config: Config;
  imageName: string;
  repoLabel: string;
  /** Publish Jupyter on this host address (the CLI's `launch`), instead of the proxy's route. */
  publishOn?: string;
  env?: Record<string, string>;
  /** The Docker network to run on (the sandbox's); Docker's default bridge when unset. */
  network?: string;
  /** Machines not to place it on (engine SessionHost ids): their sandbox is not in place. */
  avoidHosts?: string[];
  /** Labels beyond Bindery's own (`bindery.kind`, `bindery.session`, `bindery.repo`). */
  labels?: Record<string, string>;
  /** The container's name, when it was chosen earlier (a reserved quota slot); else a new one. */
  name?: string;
}

/** A new session name: `bindery-` and 12 hex digits. */
export const newSessionName = () => `bindery-${randomBytes(6).toString('hex')}`;

/**
 * How BinderHub starts an image built from a repository's own Dockerfile, which knows nothing
 * of Bindery: Jupyter's command with the address, port and base URL on its command line (the
 * token comes in JUPYTER_TOKEN, which Notebook 6 and Jupyter Server both read, so it never
 * shows in `ps`). Notebook 6 reads NotebookApp's options, Jupyter Server ServerApp's.
 */
export const dockerfileSessionCommand = (baseUrl: string) => [
  'jupyter',
  'notebook',
  '--ip=0.0.0.0',
  '--port=8888',
  '--no-browser',
  `--NotebookApp.base_url=${baseUrl}`,
  `--ServerApp.base_url=${baseUrl}`,
];

/**
 * Starts a session container from a built image: Jupyter at `/user/<name>/` with a random
 * token, as uid 1000 with the configured limits, no capabilities and no new privileges.
 * Rendered images run their own launcher; a repository's Dockerfile image gets Jupyter's
 * command line, as BinderHub gives it.
 */
export async function startSession(options: StartSessionOptions): Promise<StartedSession> {
  const { engine, config } = options;
  const name = options.name ?? newSessionName();
  const token = randomBytes(24).toString('hex');
  const baseUrl = `/user/${name}/`;
  const image = await engine.inspectImage(options.imageName);
  const container = await engine.runSession({
    name,
    image: options.imageName,
    cmd:
      image?.labels['bindery.buildpack'] === 'dockerfile'
        ? dockerfileSessionCommand(baseUrl)
        : undefined,
    env: { ...options.env, JUPYTER_TOKEN: token, BINDERY_BASE_URL: baseUrl },
    labels: {
      ...options.labels,
      'bindery.kind': 'session',
      'bindery.session': name,
      'bindery.repo': options.repoLabel,
    },
    limits: {
      cpus: config.session.cpus,
      memoryBytes: config.session.memoryBytes,
      pidsLimit: config.session.pidsLimit,
    },
    runtime: config.session.runtime === 'runsc' ? 'runsc' : undefined,
    publishOn: options.publishOn,
    network: options.network,
    avoidHosts: options.avoidHosts,
  });
  return { container, url: `${container.url}${baseUrl}`, token };
}

/** Resolves once Jupyter answers `api/status` with the token; polls every 100 ms. */
export async function waitForJupyter(
  url: string,
  token: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    // A referenced timer, unlike AbortSignal.timeout's: while Jupyter starts, undici may hold
    // no referenced handle, and Node would exit with this loop still pending.
    const attempt = new AbortController();
    const timer = setTimeout(() => attempt.abort(), 2_000);
    try {
      const response = await fetch(`${url}api/status`, {
        headers: { Authorization: `token ${token}` },
        signal: attempt.signal,
      });
      // The body is let go either way: an unread one keeps its connection to the session busy
      // (and the process alive) until garbage collection, after the container is long gone.
      await response.body?.cancel();
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new UnavailableError(
    `Jupyter did not start within ${formatDuration(timeoutMs)} (${last}).`,
  );
}
