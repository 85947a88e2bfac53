import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createReverseProxy, type ReverseProxy } from '../../src/proxy/reverse-proxy.js';
import { createHttpHandler } from '../../src/web/create-app.js';
import { launchChromium, type Chromium } from './launch-chromium.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * Without BINDERY_SESSION_HOST a session shares the service's origin. In a real browser, a
 * hostile session must not claim that origin: a service worker with scope `/` would control the
 * service's own pages and every other session's, and a cookie with `Path=/` would reach them.
 * The session here is a stub HTTP server routed like a real one, answering what a hostile
 * repository's server could answer. The service is on 127.0.0.1: a secure context for
 * Chromium, so service workers are available at all.
 */

const run = randomBytes(4).toString('hex');
const prefix = `bindery-test-sw-${run}`;
const session = `bindery-sw${run}`;
const redis = new Redis({ maxRetriesPerRequest: 1 });
const routes = new RedisRouteTable(redis, { prefix });

let stub: Server;
let proxy: ReverseProxy;
let service: Server;
/** http://127.0.0.1:<port>, the service with the proxy mounted as `bindery serve` mounts it. */
let origin: string;
let browser: Chromium;

/** The session's page: registers its own script with the scope the test asks for. */
const sessionPage = `<!doctype html><html><head><meta charset="utf-8"><title>session</title></head>
<body><script>
window.connect = () => new Promise((resolve) => {
  const socket = new WebSocket('ws://' + location.host + '/user/${session}/api/events');
  socket.onopen = () => { resolve('open'); socket.close(); };
  socket.onerror = () => resolve('failed');
});
window.register = (scope) =>
  navigator.serviceWorker.register('/user/${session}/sw.js', { scope }).then(
    (registration) => 'registered ' + new URL(registration.scope).pathname,
    (error) => 'refused: ' + error.name,
  );
</script></body></html>`;

beforeAll(async () => {
  stub = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path === `/user/${session}/sw.js`) {
      response.writeHead(200, {
        'content-type': 'text/javascript',
        'service-worker-allowed': '/',
      });
      return void response.end("self.addEventListener('fetch', () => {});\n");
    }
    if (path === `/user/${session}/`) {
      response.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'set-cookie': ['a=1; Path=/', `b=2; Path=/; Domain=127.0.0.1`],
      });
      return void response.end(sessionPage);
    }
    response.writeHead(404).end();
  });
  // Its WebSocket answers the handshake with a cookie, which browsers store too.
  new WebSocketServer({ server: stub }).on('headers', (headers) =>
    headers.push('Set-Cookie: ws=1; Path=/'),
  );
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  await routes.set(session, {
    target: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
  });

  proxy = createReverseProxy({ routes, log: quietLog });
  // The service's own pages, where a worker with scope / would take over.
  const app: RequestListener = (_request, response) =>
    response
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><title>Bindery</title><p>the service');
  service = createServer(createHttpHandler(app, proxy));
  service.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  proxy?.close();
  service?.closeAllConnections();
  await new Promise((resolve) => (service ? service.close(resolve) : resolve(undefined)));
  stub?.closeAllConnections();
  await new Promise((resolve) => (stub ? stub.close(resolve) : resolve(undefined)));
  await redis.del(`${prefix}:routes`);
  redis.disconnect();
}, 30_000);

describe('a hostile session on the service origin, in Chromium', () => {
  test('cannot register a service worker with scope /, only within /user/<session>/', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${origin}/user/${session}/`);
    const register = (scope: string) =>
      page.evaluate(`window.register(${JSON.stringify(scope)})`) as Promise<string>;
    expect(await register('/')).toBe('refused: SecurityError');
    // Service workers work here at all: the session keeps its own scope.
    expect(await register(`/user/${session}/`)).toBe(`registered /user/${session}/`);

    // The service's own page is controlled by no worker of the session's.
    await page.goto(`${origin}/`);
    const scopes = await page.evaluate(
      `navigator.serviceWorker.getRegistrations().then((all) => all.map((r) => new URL(r.scope).pathname))`,
    );
    expect(scopes).toEqual([`/user/${session}/`]);
    expect(await page.evaluate('navigator.serviceWorker.controller')).toBeNull();
    await page.close();
  });

  test('cannot set a cookie that the service and other sessions receive', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${origin}/user/${session}/`);
    const names = async (url: string) =>
      (await browser.context.cookies(url)).map((cookie) => cookie.name).sort();
    expect(await names(`${origin}/`)).toEqual([]);
    expect(await names(`${origin}/user/another-session/`)).toEqual([]);
    expect(await names(`${origin}/user/${session}/`)).toEqual(['a', 'b']);
    await page.close();
  });

  test('cannot set a cookie for the whole origin through a WebSocket handshake', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${origin}/user/${session}/`);
    await browser.context.clearCookies();
    expect(await page.evaluate('window.connect()')).toBe('open');
    const cookies = await browser.context.cookies(`${origin}/user/${session}/`);
    expect(cookies.map(({ name, path }) => ({ name, path }))).toEqual([
      { name: 'ws', path: `/user/${session}/` },
    ]);
    expect(await browser.context.cookies(`${origin}/`)).toEqual([]);
    await page.close();
  });
});
