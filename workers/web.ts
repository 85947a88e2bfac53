import type { AddressInfo } from 'node:net';
import { createWebhookHandlers } from '../src/github/webhook-handlers.js';
import { createWebhookMiddleware } from '../src/github/webhook-middleware.js';
import { repoInstallation } from '../src/github/repo-installation.js';
import { createReverseProxy } from '../src/proxy/reverse-proxy.js';
import { reconcileSessions } from '../src/sessions/reconcile-sessions.js';
import type { RunningRole, ServiceOptions, ServiceParts } from '../src/service.js';
import { createApp, createHttpHandler } from '../src/web/create-app.js';
import { PrivateAccess } from '../src/web/private-access.js';
import { PrivateSessions } from '../src/web/private-sessions.js';
import { createHttpServer } from '../src/web/http-server.js';
import { createSessionBar } from '../src/web/session-bar.js';

/**
 * The web role: BinderHub's pages and API, the GitHub App's webhooks and the sessions' proxy
 * on one port. Sessions the engine and Redis disagree on are settled before it listens.
 */
export async function startWeb(
  parts: ServiceParts,
  options: Pick<ServiceOptions, 'host' | 'version'>,
): Promise<RunningRole> {
  const { config, engine, store, routes, github } = parts;
  const log = parts.log.child({ component: 'web' });
  const webhooks =
    github &&
    (await createWebhookMiddleware({
      probot: github.app.probot,
      handlers: createWebhookHandlers({
        addPrebuilds: (delivery, jobs) => github.queue.addPrebuilds(delivery, jobs),
      }),
      webhookSecret: github.webhookSecret,
      log: parts.log,
    }));
  log.info(
    github
      ? `GitHub App ${config.githubApp?.appId} on: webhooks at /api/github/webhooks`
      : 'GitHub App off: set APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET to turn it on',
  );
  const { kept, removed } = await reconcileSessions({ engine, store, routes });
  if (kept.length + removed.length > 0) {
    log.info(`sessions reconciled: ${kept.length} kept, ${removed.length} removed`);
  }
  // Private repositories for signed-in readers (GITHUB_CLIENT_ID/SECRET): the web pages launch
  // them, the proxy keeps their sessions to their launcher and whom they share them with.
  const privateAccess =
    config.signIn &&
    new PrivateAccess({
      config,
      redis: parts.redis,
      namespace: parts.namespace,
      installationFor: github && ((owner, repo) => repoInstallation(github.app, owner, repo)),
    });
  const privateSessions =
    privateAccess &&
    new PrivateSessions(parts.redis, parts.namespace, privateAccess, config.maxAgeSeconds);
  const app = createApp({
    config,
    engine,
    resolve: (spec) => parts.builder.resolve(spec),
    builds: parts.builds,
    store,
    routes,
    sandbox: parts.sandbox,
    redis: parts.redis,
    namespace: parts.namespace,
    version: options.version ?? '0.1.0',
    webhooks,
    log: parts.log,
    privateAccess,
    privateSessions,
  });
  const proxy = createReverseProxy({
    routes,
    sessionHost: config.sessionHost,
    publicUrl: config.publicUrl,
    onActivity: (name, at) => store.touch(name, at),
    admit: privateSessions && ((request, session) => privateSessions.admits(request, session)),
    log: parts.log,
    // Download my work, Share, Stop and the time left, at /user/<session>/_bindery/.
    sessionBar: createSessionBar({
      engine,
      store,
      routes,
      config,
      log: parts.log.child({ component: 'session-bar' }),
      shareUrl:
        privateSessions && ((request, record) => privateSessions.shareUrl(request, record, config)),
    }),
  });
  const server = createHttpServer(createHttpHandler(app, proxy), proxy);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, options.host ?? '0.0.0.0', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    async close() {
      proxy.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
