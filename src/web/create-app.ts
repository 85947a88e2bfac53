import express, { type Response } from 'express';
import type { RequestListener } from 'node:http';
import { BinderyError } from '../errors.js';
import { logAccess } from '../log/access-log.js';
import { defaultLog } from '../log/create-log.js';
import type { ReverseProxy } from '../proxy/reverse-proxy.js';
import type { ResolvedRepo } from '../build/builder.js';
import { parseSpec, type RepoSpec } from '../repos/repo-spec.js';
import { AnswerCache } from './answer-cache.js';
import { BADGE_LOGO } from './badges.js';
import { buildLogRoute } from './build-log-route.js';
import { buildRoute, specFromPath } from './build-route.js';
import { evaluateHomeForm, homeFormInput } from './home-form.js';
import { renderHomePage } from './home-page.js';
import { renderLaunchError, renderLaunchPage, urlpathFrom } from './launch-page.js';
import { pageAssetsRoute } from './page-assets-route.js';
import { pageHeaders } from './page-headers.js';
import { PrivateAccess } from './private-access.js';
import { shareRoute } from './share-route.js';
import { signInRoutes } from './sign-in-routes.js';
import { ASSETS } from './page-layout.js';
import { healthRoute } from './health-route.js';
import { createMetrics } from './metrics.js';
import { statusBadgeRoute } from './status-badge-route.js';
import type { WebDeps } from './web-deps.js';

/** Requests made every few seconds by machines (probes, scrapers) or for every page (assets). */
const CHATTY = /^\/(health|metrics|static\/|badge_logo\.svg$|badge\.svg$)/;

const svg = (response: Response, body: string) =>
  response.type('image/svg+xml').set('cache-control', 'no-cache').send(body);

/**
 * The service's HTTP listener: what the proxy owns (`/user/<session>/…`, and with
 * BINDERY_SESSION_HOST every request to a session's host name) goes to it, the rest to `app`.
 * The server's `upgrade` event goes to `proxy.handleUpgrade` alone.
 */
export function createHttpHandler(
  app: RequestListener,
  proxy: Pick<ReverseProxy, 'owns' | 'handleRequest'>,
): RequestListener {
  return (request, response) =>
    proxy.owns(request) ? proxy.handleRequest(request, response) : app(request, response);
}

/**
 * The Bindery web app: BinderHub's launch pages and API, health, versions, metrics and badges.
 * `/user/…` is the proxy's, outside Express (see createHttpHandler).
 */
export function createApp(deps: WebDeps) {
  const app = express();
  const metrics = createMetrics();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  const log = (deps.log ?? defaultLog()).child({ component: 'web' });
  // First, so that every request has its line, webhooks included; probes and assets at debug.
  app.use((request, response, next) => {
    logAccess(log, request, response, { client: request.ip, chatty: CHATTY.test(request.path) });
    next();
  });
  // Before any body parsing: the webhook signature is checked against the raw payload.
  if (deps.webhooks) app.use(deps.webhooks);

  app.use(ASSETS, pageAssetsRoute());

  // Sign-in with GitHub, for private repositories; off without GITHUB_CLIENT_ID/SECRET.
  const privateAccess =
    deps.privateAccess ?? (deps.config.signIn ? new PrivateAccess(deps) : undefined);
  app.use(signInRoutes({ ...deps, log }));
  if (deps.privateSessions) app.post('/share/:session', shareRoute({ ...deps, log }));

  app.get('/', pageHeaders, (request, response) => {
    const submitted = 'repo' in request.query;
    const result = submitted
      ? evaluateHomeForm(homeFormInput(request.query), {
          publicUrl: deps.config.publicUrl,
          githubUrl: deps.config.githubUrl,
        })
      : undefined;
    response.type('html').send(renderHomePage({ config: deps.config, result }));
  });

  app.get(/^\/v2\/.+/, pageHeaders, (request, response) => {
    const { provider, path } = specFromPath(request.path, '/v2/');
    let repo: RepoSpec;
    try {
      repo = parseSpec(provider, path, { githubUrl: deps.config.githubUrl });
    } catch (error) {
      const status = error instanceof BinderyError ? error.status : 400;
      response
        .status(status)
        .type('html')
        .send(renderLaunchError((error as Error).message));
      return;
    }
    response
      .type('html')
      .send(renderLaunchPage({ provider, spec: path, repo, urlpath: urlpathFrom(request.query) }));
  });

  // BinderHub's first URLs: /repo/<owner>/<repo>[/<ref>] meant a GitHub repository.
  app.get('/repo/:owner/:repo{/:ref}', (request, response) => {
    const { owner, repo, ref = 'HEAD' } = request.params as Record<string, string>;
    const query = new URLSearchParams(request.query as Record<string, string>).toString();
    response.redirect(`/v2/gh/${owner}/${repo}/${ref}${query ? `?${query}` : ''}`);
  });

  // Launches of one spec at the same moment share one resolution of its ref: many visitors
  // clicking one badge would otherwise run `git ls-remote` (or ask GitHub) once each, and each
  // spawn holds up this process. Nothing is kept once answered: a launch sees its ref as of at
  // most one resolution under way when it came.
  const resolving = new AnswerCache<ResolvedRepo>({ ttlMs: 0 });
  const resolve = (spec: RepoSpec) =>
    resolving
      .compute(`${spec.provider} ${spec.url} ${spec.ref}`, () => deps.resolve(spec))
      .then((resolved) => ({ ...resolved }));
  app.get(/^\/build\/.+/, buildRoute({ ...deps, resolve, log, privateAccess }, metrics));

  app.get(/^\/logs\/.+/, buildLogRoute({ ...deps, log }));

  app.get('/health', healthRoute(deps));

  app.get('/versions', (_request, response) => {
    response.json({
      binderhub: `bindery-${deps.version}`,
      builder: `bindery ${deps.version} (repo2docker-compatible)`,
    });
  });

  app.get('/metrics', async (_request, response) => {
    response.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get(['/badge_logo.svg', '/badge.svg'], (_request, response) => svg(response, BADGE_LOGO));

  app.get(/^\/status\/.+\.svg$/, statusBadgeRoute(deps));

  return app;
}
