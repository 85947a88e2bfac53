import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { logAccess, logUpgrade } from '../log/access-log.js';
import { defaultLog, type Logger } from '../log/create-log.js';
import { throttleActivity, type ActivityListener } from './activity-throttle.js';
import { confineSessionHeaders } from './confine-session-headers.js';
import { forwardRequest } from './forward-request.js';
import { placeRequest, type Placement } from './place-request.js';
import {
  badAnswerPage,
  noSessionPage,
  rawResponse,
  renderPage,
  routesUnavailablePage,
  sessionElsewherePage,
  sessionGonePage,
  type ProxyPage,
} from './proxy-pages.js';
import type { RouteTable } from './route-table.js';
import { sessionBarPath } from './session-bar-path.js';
import { sessionHostFrom } from './session-host.js';
import { tunnelUpgrade } from './tunnel-upgrade.js';

export interface ReverseProxyOptions {
  routes: RouteTable;
  /**
   * Told that a session saw traffic (an HTTP request, WebSocket bytes either way), at most
   * once per `activityIntervalMs` per session; for idle culling. Errors are logged, not thrown.
   */
  onActivity?: ActivityListener;
  /** The clock for activity times. @defaultValue Date.now */
  now?: () => number;
  /** @defaultValue 1000 */
  activityIntervalMs?: number;
  /** A session that does not accept a connection in this long is dead. @defaultValue 10000 */
  connectTimeoutMs?: number;
  /**
   * BINDERY_SESSION_HOST, e.g. `{session}.sessions.example.org`: each session is served on its
   * own host name, and `/user/<session>/` on the service's host only redirects there.
   * @defaultValue unset: sessions share the service's origin under `/user/<session>/`
   */
  sessionHost?: string;
  /** The service's public URL: the scheme (and port) of session hosts. @defaultValue http://localhost */
  publicUrl?: string;
  /**
   * Where the 404 and 503 pages send people to start a session.
   * @defaultValue `/`, or the public URL when sessions have hosts of their own
   */
  launchPageUrl?: string;
  /**
   * The service's logger; the proxy writes to its `proxy` child one line per failure and an
   * access log line per request (successful HTTP requests at debug: a session makes many).
   * @defaultValue defaultLog()
   */
  log?: Logger;
  /**
   * Answers `/user/<session>/_bindery/…` (the session bar, src/web/session-bar.ts) instead of
   * the session, on the session's path and on its own host name alike; it authenticates the
   * visitor itself. @defaultValue none: those paths go to the session like any other
   */
  /**
   * Whether the visitor may reach `session` at all (a private repository's session: its
   * launcher and whom they shared it with, src/web/private-sessions.ts); one refused gets the
   * 404 of a session that does not exist. @defaultValue everyone (the session token decides)
   */
  admit?(request: IncomingMessage, session: string): Promise<boolean>;
  sessionBar?: {
    /** `rest` is what follows `/user/<session>/_bindery` (sessionBarPath). */
    handle(
      request: IncomingMessage,
      response: ServerResponse,
      session: string,
      rest: string,
    ): Promise<void>;
  };
}

export interface ReverseProxy {
  /** Whether a request is the proxy's (a session's path or host) rather than the service's pages. */
  owns(request: IncomingMessage): boolean;
  /** Proxies a request the proxy owns; answers 404/503 (or redirects) itself when it cannot. */
  handleRequest(request: IncomingMessage, response: ServerResponse): void;
  /** For the server's `upgrade` event: tunnels WebSockets to sessions, refuses the rest. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes idle connections to sessions and every open WebSocket, for shutdown. */
  close(): void;
}

/** The target is not there (any more): the session's container stopped or went away. */
const TARGET_DOWN = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
]);

/**
 * The reverse proxy for sessions on plain node:http: places the request (placeRequest), looks
 * the session up in the route table and forwards the request (or tunnels the WebSocket) to its
 * target, path and query unchanged, since Jupyter runs with base_url `/user/<session>/`.
 * The session's answer loses what would claim the whole origin (confineSessionHeaders).
 * No route → 404; a target that refuses, resets or does not answer → 503, each logged as one line.
 */
export function createReverseProxy(options: ReverseProxyOptions): ReverseProxy {
  const { routes } = options;
  const log = (options.log ?? defaultLog()).child({ component: 'proxy' });
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const sessionHost = options.sessionHost
    ? sessionHostFrom(options.sessionHost, options.publicUrl ?? 'http://localhost')
    : undefined;
  const launchPageUrl =
    options.launchPageUrl ?? (sessionHost && options.publicUrl ? `${options.publicUrl}/` : '/');
  const place = (request: IncomingMessage, upgrade: boolean): Placement =>
    placeRequest(
      { method: request.method, url: request.url, host: request.headers.host, upgrade },
      sessionHost,
    );
  const touch = options.onActivity
    ? throttleActivity(options.onActivity, {
        intervalMs: options.activityIntervalMs ?? 1_000,
        now: options.now ?? Date.now,
        log,
      })
    : () => {};
  // Keep-alive to the sessions: a request through the proxy costs no new TCP handshake.
  const agent = new Agent({ keepAlive: true, timeout: 30_000, scheduling: 'lifo' });
  const tunnels = new Set<Socket>();

  /** The route's target, or the page to answer with; logs what went wrong. */
  async function resolve(session: string): Promise<URL | ProxyPage> {
    try {
      const route = await routes.get(session);
      if (!route) return noSessionPage(session, launchPageUrl);
      return new URL(route.target);
    } catch (error) {
      log.error({ session }, `route lookup failed: ${(error as Error).message}`);
      return routesUnavailablePage();
    }
  }

  /** Logs a failed target in one line (no stack, no query: it may hold the token). */
  function pageForFailure(
    error: NodeJS.ErrnoException,
    request: IncomingMessage,
    session: string,
    target: URL,
  ) {
    const path = (request.url ?? '').split('?')[0];
    const down = TARGET_DOWN.has(error.code ?? '');
    const what = down ? `${error.code} (session not running)` : error.message;
    log.warn({ session }, `${request.method} ${path} → ${target.host}: ${what}`);
    return down ? sessionGonePage(session, launchPageUrl) : badAnswerPage(session);
  }

  function answer(response: ServerResponse, request: IncomingMessage, page: ProxyPage): void {
    if (response.headersSent || response.destroyed) return;
    const { status, headers, body } = renderPage(page, request);
    response.writeHead(status, headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  function refuseUpgrade(
    socket: Duplex,
    request: IncomingMessage,
    page: ProxyPage,
    startedAt: number,
    session?: string,
  ): void {
    logUpgrade(log, request, page.status, startedAt, { session });
    if (socket.writable) socket.end(rawResponse(page, request));
    else socket.destroy();
  }

  /**
   * The page for a request that reaches no session: none named (or a service page, which only
   * a caller that did not ask `owns` sends here), or a session served on its own host.
   */
  function pageFor(placement: Exclude<Placement, { to: 'session' }>): ProxyPage {
    if (placement.to === 'session host' && placement.location) {
      return sessionElsewherePage(placement.session, placement.location);
    }
    const session = placement.to === 'none' || placement.to === 'session host';
    return noSessionPage(session ? placement.session : undefined, launchPageUrl);
  }

  /** The redirect a placement asks for, if any. */
  const redirectFor = (placement: Placement) =>
    placement.to === 'redirect' || placement.to === 'session host' ? placement.location : undefined;

  async function proxyRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const placement = place(request, false);
    logAccess(log, request, response, {
      session: 'session' in placement ? placement.session : undefined,
      chatty: placement.to === 'session',
    });
    const location = redirectFor(placement);
    if (location) {
      // A page load follows a 302; a form post or API call is told to repeat itself there.
      const get = request.method === 'GET' || request.method === 'HEAD';
      response.writeHead(get ? 302 : 307, { location });
      return void response.end();
    }
    if (placement.to !== 'session') return answer(response, request, pageFor(placement));
    const { session, path } = placement;
    if (options.admit && !(await options.admit(request, session))) {
      return answer(response, request, noSessionPage(session, launchPageUrl));
    }
    const bar = options.sessionBar && sessionBarPath(path, session);
    if (bar !== undefined) return options.sessionBar!.handle(request, response, session, bar);
    const target = await resolve(session);
    if (!(target instanceof URL)) return answer(response, request, target);
    touch(session);
    forwardRequest(request, response, target, {
      agent,
      connectTimeoutMs,
      path,
      responseHeaders: (headers) => confineSessionHeaders(headers, session, request.url ?? '/'),
      onError: (error, answered) => {
        const page = pageForFailure(error, request, session, target);
        if (!answered) answer(response, request, page);
      },
    });
  }

  async function proxyUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer) {
    const startedAt = performance.now();
    socket.on('error', () => socket.destroy());
    // Never a redirect: a browser does not follow one for a WebSocket.
    const placement = place(request, true);
    if (placement.to !== 'session') {
      const named = 'session' in placement ? placement.session : undefined;
      return refuseUpgrade(socket, request, pageFor(placement), startedAt, named);
    }
    const { session, path } = placement;
    if (options.admit && !(await options.admit(request, session))) {
      return refuseUpgrade(
        socket,
        request,
        noSessionPage(session, launchPageUrl),
        startedAt,
        session,
      );
    }
    const target = await resolve(session);
    if (!(target instanceof URL)) return refuseUpgrade(socket, request, target, startedAt, session);
    touch(session);
    tunnelUpgrade(request, socket, head, target, {
      connectTimeoutMs,
      path,
      // A browser stores cookies from a WebSocket handshake's answer too.
      responseHeaders: (headers) => confineSessionHeaders(headers, session, request.url ?? '/'),
      onTraffic: () => touch(session),
      onRefused: (error) =>
        refuseUpgrade(
          socket,
          request,
          pageForFailure(error, request, session, target),
          startedAt,
          session,
        ),
      onOpen: (upstream, status) => {
        logUpgrade(log, request, status, startedAt, { session });
        tunnels.add(upstream);
        upstream.once('close', () => tunnels.delete(upstream));
      },
    });
  }

  const unexpected = (error: unknown) => log.error({ err: error }, 'unexpected failure');

  return {
    owns: (request) => place(request, false).to !== 'service',
    handleRequest(request, response) {
      proxyRequest(request, response).catch((error) => {
        unexpected(error);
        if (!response.headersSent) response.writeHead(500).end();
        else response.destroy();
      });
    },
    handleUpgrade(request, socket, head) {
      proxyUpgrade(request, socket, head).catch((error) => {
        unexpected(error);
        socket.destroy();
      });
    },
    close() {
      agent.destroy();
      for (const upstream of tunnels) upstream.destroy();
    },
  };
}
