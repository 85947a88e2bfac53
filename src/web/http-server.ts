import { createServer, type RequestListener, type Server } from 'node:http';
import type { ReverseProxy } from '../proxy/reverse-proxy.js';

/**
 * Node's HTTP server as Bindery listens with it (the caller calls `listen`): WebSocket upgrades
 * go to the proxy, and an idle keep-alive connection is kept 75 s, longer than the front
 * proxies' own idle time (nginx's upstream keepalive_timeout is 60 s). Node's default of 5 s
 * closes connections a client is about to reuse: a busy client (or nginx) then sends a request
 * into a closing socket and gets "other side closed" instead of an answer.
 */
export function createHttpServer(
  handler: RequestListener,
  proxy?: Pick<ReverseProxy, 'handleUpgrade'>,
): Server {
  const server = createServer(handler);
  server.keepAliveTimeout = 75_000;
  // Node's advice: longer than keepAliveTimeout, so a slow first request is not cut short.
  server.headersTimeout = 76_000;
  if (proxy) {
    server.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
  }
  return server;
}
