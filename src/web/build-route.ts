import type { Request, Response } from 'express';
import { ImageStore } from '../engine/image-store.js';
import { BinderyError, ForbiddenError } from '../errors.js';
import { defaultLog } from '../log/create-log.js';
import { binderLinks } from '../repos/binder-links.js';
import type { ResolvedRepo } from '../build/builder.js';
import type { BuildEvent } from '../build-event.js';
import { isFinalEvent } from '../queue/build-log.js';
import { parseSpec, type RepoSpec } from '../repos/repo-spec.js';
import { ImageLaunches, launchHoldMs } from '../sessions/image-launches.js';
import { launchSession } from '../sessions/launch-session.js';
import { openEventStream, resumePoint, type EventStream } from './event-stream.js';
import { checkLaunchRate, checkSpecAllowed, requestClient } from './launch-limits.js';
import type { Metrics } from './metrics.js';
import { SignInNeededError, type PrivateLaunch } from './private-access.js';
import type { WebDeps } from './web-deps.js';

/**
 * `<provider>` and the still-escaped `<spec>` of a path under `prefix`. Express decodes route
 * parameters, which would turn a git spec's %2F into slashes; the spec parser decodes each part.
 */
export function specFromPath(path: string, prefix: string): { provider: string; path: string } {
  const rest = path.slice(prefix.length);
  const slash = rest.indexOf('/');
  return slash < 0
    ? { provider: rest, path: '' }
    : { provider: rest.slice(0, slash), path: rest.slice(slash + 1) };
}

const statusOf = (error: unknown) => (error instanceof BinderyError ? error.status : 500);

/**
 * GET /build/<provider>/<spec>: BinderHub's launch API. Streams `waiting`, `fetching`,
 * `building`…, `built`, `launching`, then `ready` or `failed` as server-sent events; with
 * `build_only=true` (for API token holders) it ends at `ready` with the image name.
 *
 * Build log events carry their log entry's id (`id:`); a client that reconnects with
 * `Last-Event-ID` goes on after it, so it never gets a line twice. The build of a commit that
 * failed is not started again by the next visit: its recorded log is sent, ending in its
 * failure, unless the request says `rebuild=true` (the launch page's retry button).
 */
export function buildRoute(deps: WebDeps, metrics: Metrics) {
  return async (request: Request, response: Response): Promise<void> => {
    if (
      !request.accepts('text/event-stream') ||
      !/text\/event-stream/.test(request.get('accept') ?? '')
    ) {
      response.status(400).json({
        message:
          'GET /build/... is an event stream: send Accept: text/event-stream (an EventSource does).',
      });
      return;
    }
    const stream = openEventStream(request, response);
    try {
      await runLaunch(deps, metrics, request, stream);
    } catch (error) {
      if (!(error instanceof BinderyError)) {
        (deps.log ?? defaultLog()).error({ err: error }, 'launch failed unexpectedly');
      }
      stream.send({
        phase: 'failed',
        status_code: statusOf(error),
        message:
          error instanceof BinderyError
            ? `${error.message}\n`
            : 'Bindery failed unexpectedly; the operator can see why in its log.\n',
        // The launch page offers it: the repository may be private, and the visitor's to launch.
        ...(error instanceof SignInNeededError && { sign_in_url: error.signInUrl }),
      });
    } finally {
      stream.end();
    }
  };
}

async function runLaunch(deps: WebDeps, metrics: Metrics, request: Request, stream: EventStream) {
  const { config } = deps;
  const { provider, path } = specFromPath(request.path, '/build/');
  const spec = parseSpec(provider, path, { githubUrl: config.githubUrl });
  checkSpecAllowed(config.quotas, spec, path);

  // One client is one IPv4 address or one IPv6 /64; token holders are not counted, and a wrong
  // token is refused.
  const client = requestClient(request, config.apiTokens);
  const buildOnly = request.query.build_only === 'true';
  const rebuild = request.query.rebuild === 'true';
  const from = resumePoint(request);
  if (buildOnly && client !== undefined) {
    throw new ForbiddenError('build_only needs an API token: send Authorization: Bearer <token>.');
  }
  if (client !== undefined) {
    await checkLaunchRate(deps.redis, client, config.quotas.launchesPerMinute, deps.namespace);
  }

  let resolved: ResolvedRepo;
  let privateLaunch: PrivateLaunch | undefined;
  try {
    resolved = await deps.resolve(spec);
  } catch (error) {
    // A private repository launches only for a signed-in visitor who may read it.
    if (!deps.privateAccess) throw error;
    ({ resolved, private: privateLaunch } = await deps.privateAccess.resolveForVisitor(
      spec,
      request,
      error,
    ));
  }
  // From before it looks for its image until the session runs, a launch holds the image: the
  // image pruner leaves it be, or has removed it already and the launch builds it again.
  const release = buildOnly
    ? undefined
    : await new ImageLaunches(deps.redis, deps.namespace).hold(
        resolved.imageName,
        launchHoldMs(config),
      );
  try {
    await buildThenLaunch(deps, metrics, stream, {
      spec,
      resolved,
      buildOnly,
      client,
      rebuild,
      from,
      privateLaunch,
    });
  } finally {
    await release?.().catch(() => {});
  }
}

/** A launch once its spec is resolved: the build unless the image exists, then the session. */
async function buildThenLaunch(
  deps: WebDeps,
  metrics: Metrics,
  stream: EventStream,
  launch: {
    spec: RepoSpec;
    resolved: ResolvedRepo;
    buildOnly: boolean;
    client?: string;
    /** Build again even if this commit's build failed. */
    rebuild: boolean;
    /** The last log entry id the client saw (`0-0`: none). */
    from: string;
    /** A private repository's: fetched with the app installation's token. */
    privateLaunch?: PrivateLaunch;
  },
) {
  const { config } = deps;
  const { spec, resolved, buildOnly, client, rebuild, from, privateLaunch } = launch;
  const { imageName } = resolved;
  // This host's images, and the registry's when BINDERY_REGISTRY is set: an image built on
  // another host is pulled by the launch, not built again.
  const images = new ImageStore(deps.engine, config);
  if (await images.isBuilt(imageName)) {
    stream.send({ phase: 'built', imageName, message: 'Found built image, launching...\n' });
  } else if (!rebuild && (await failedBefore(deps, imageName))) {
    await sendLog(deps, stream, imageName, from);
    return;
  } else {
    const started = Date.now();
    metrics.inProgressBuilds.inc();
    let outcome = 'failure';
    try {
      await deps.builds.enqueue({
        imageName,
        ref: resolved.ref,
        spec,
        ...(privateLaunch && { installationId: privateLaunch.installationId }),
      });
      const final = await sendLog(deps, stream, imageName, from);
      if (stream.signal.aborted) return;
      if (final?.phase === 'failed') return;
      // A client that had seen the whole log came back: the image must be there now.
      if (!final && !(await images.isBuilt(imageName))) {
        stream.send({
          phase: 'failed',
          imageName,
          message: 'The build ended without an image; reload the page to build it again.\n',
        });
        return;
      }
      outcome = 'success';
    } finally {
      metrics.inProgressBuilds.dec();
      metrics.buildTime.labels(outcome, '0', spec.repoLabel).observe((Date.now() - started) / 1000);
      metrics.buildCount.labels(outcome, spec.provider, spec.repoLabel).inc();
    }
  }
  if (buildOnly) {
    stream.send({ phase: 'ready', imageName, message: `Built ${imageName}\n` });
    return;
  }

  // A client gone before its session starts gets none: when it reconnects (Last-Event-ID), the
  // reconnected request launches it, so one visit makes one session.
  if (stream.signal.aborted) return;
  stream.send({ phase: 'launching', message: 'Launching server...\n' });
  const started = Date.now();
  metrics.inProgressLaunches.inc();
  let outcome = 'failure';
  try {
    const links = binderLinks(spec, resolved.ref, config.publicUrl);
    const session = await launchSession(deps, {
      image: imageName,
      repo: spec.repoLabel,
      links,
      client,
    });
    // Before its URL and token are sent: only its launcher gets in, and whom they share it with.
    if (privateLaunch) {
      await deps.privateSessions?.record(
        session.name,
        { id: privateLaunch.userId },
        privateLaunch.repo,
      );
    }
    outcome = 'success';
    stream.send({
      phase: 'ready',
      message: `server running at ${session.url}\n`,
      url: session.url,
      token: session.token,
      image: imageName,
      repo_url: links.repoUrl,
      binder_ref_url: links.refUrl,
      binder_launch_host: links.launchHost,
      binder_request: links.request,
      binder_persistent_request: links.persistentRequest,
    });
  } finally {
    metrics.inProgressLaunches.dec();
    metrics.launchTime.labels(outcome, '0', spec.repoLabel).observe((Date.now() - started) / 1000);
    metrics.launchCount.labels(outcome, spec.provider, spec.repoLabel).inc();
  }
}

/** Whether the newest build of `imageName` failed and its log, ending in that failure, is kept. */
async function failedBefore(deps: WebDeps, imageName: string): Promise<boolean> {
  if ((await deps.builds.status?.(imageName)) !== 'failed') return false;
  const entries = (await deps.builds.entries?.(imageName)) ?? [];
  return entries.at(-1)?.event.phase === 'failed';
}

/**
 * Sends `imageName`'s build log after the entry `from`, each event with its entry id, to its
 * final event; returns that event (undefined when the client had seen it, or went away). The
 * first and final events name the image, so that a page can link to its log.
 */
async function sendLog(deps: WebDeps, stream: EventStream, imageName: string, from: string) {
  let final: BuildEvent | undefined;
  let first = true;
  for await (const { id, event } of deps.builds.followFrom(imageName, from, stream.signal)) {
    const named = first || isFinalEvent(event) ? { ...event, imageName } : event;
    first = false;
    // The next event is read only once this client has taken the last ones.
    if (!stream.send(named, id)) await stream.drained();
    if (isFinalEvent(event)) final = event;
  }
  return final;
}
