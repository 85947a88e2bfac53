import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { throttleActivity, type ActivityListener } from './activity-throttle.js';
import { forwardRequest } from './forward-request.js';
import {
  badAnswerPage,
  noSessionPage,
  rawResponse,
  renderPage,
  routesUnavailablePage,
  sessionGonePage,
  type ProxyPage,
} from './proxy-pages.js';
import type { RouteTable } from './route-table.js';
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
  /** Where the 404 and 503 pages send people to start a session. @defaultValue `/` */
  launchPageUrl?: string;
  /** One line per failure. @defaultValue console.error */
  log?: (line: string) => void;
}

export interface ReverseProxy {
  /** Proxies a request for `/user/<session>/…`; answers 404/503 itself when it cannot. */
  handleRequest(request: IncomingMessage, response: ServerResponse): void;
  /** For the server's `upgrade` event: tunnels WebSockets to `/user/<session>/…`. */
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

/** `bindery-1a2b` from `/user/bindery-1a2b/tree?x`, and whether anything follows the name. */
export function sessionFromPath(url: string): { session: string; bare: boolean } | undefined {
  const match = /^\/user\/([^/?#]+)([/?#]?)/.exec(url);
  return match ? { session: match[1]!, bare: match[2] !== '/' } : undefined;
}

/**
 * The reverse proxy for `/user/<session>/…` on plain node:http: looks the session up in the
 * route table and forwards the request (or tunnels the WebSocket) to its target with path and
 * query unchanged, since Jupyter runs with base_url `/user/<session>/`.
 * No route → 404; a target that refuses, resets or does not answer → 503, each logged as one line.
 */
export function createReverseProxy(options: ReverseProxyOptions): ReverseProxy {
  const { routes } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const launchPageUrl = options.launchPageUrl ?? '/';
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
      log(`proxy: ${session}: route lookup failed: ${(error as Error).message}`);
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
    log(`proxy: ${request.method} ${path} → ${target.host}: ${what}`);
    return down ? sessionGonePage(session, launchPageUrl) : badAnswerPage(session);
  }

  function answer(response: ServerResponse, request: IncomingMessage, page: ProxyPage): void {
    if (response.headersSent || response.destroyed) return;
    const { status, headers, body } = renderPage(page, request);
    response.writeHead(status, headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  function refuseUpgrade(socket: Duplex, request: IncomingMessage, page: ProxyPage): void {
    if (socket.writable) socket.end(rawResponse(page, request));
    else socket.destroy();
  }

  async function proxyRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    const found = sessionFromPath(url);
    if (!found) return answer(response, request, noSessionPage(undefined, launchPageUrl));
    const { session, bare } = found;
    if (bare && (request.method === 'GET' || request.method === 'HEAD')) {
      // Jupyter lives at /user/<session>/; /user/<session> alone would be its 404.
      response.writeHead(302, {
        location: `/user/${session}/${url.slice(`/user/${session}`.length)}`,
      });
      return void response.end();
    }
    const target = await resolve(session);
    if (!(target instanceof URL)) return answer(response, request, target);
    touch(session);
    forwardRequest(request, response, target, {
      agent,
      connectTimeoutMs,
      onError: (error, answered) => {
        const page = pageForFailure(error, request, session, target);
        if (!answered) answer(response, request, page);
      },
    });
  }

  async function proxyUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on('error', () => socket.destroy());
    const found = sessionFromPath(request.url ?? '/');
    if (!found) return refuseUpgrade(socket, request, noSessionPage(undefined, launchPageUrl));
    const { session } = found;
    const target = await resolve(session);
    if (!(target instanceof URL)) return refuseUpgrade(socket, request, target);
    touch(session);
    tunnelUpgrade(request, socket, head, target, {
      connectTimeoutMs,
      onTraffic: () => touch(session),
      onRefused: (error) =>
        refuseUpgrade(socket, request, pageForFailure(error, request, session, target)),
      onOpen: (upstream) => {
        tunnels.add(upstream);
        upstream.once('close', () => tunnels.delete(upstream));
      },
    });
  }

  const unexpected = (error: unknown) =>
    log(`proxy: unexpected failure: ${(error as Error)?.stack ?? String(error)}`);

  return {
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
