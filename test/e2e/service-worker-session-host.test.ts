import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createReverseProxy, type ReverseProxy } from '../../src/proxy/reverse-proxy.js';
import { sessionUrl } from '../../src/proxy/session-host.js';
import { createHttpHandler } from '../../src/web/create-app.js';
import { freePort } from '../helpers/free-port.js';
import { launchChromium, type Chromium } from './launch-chromium.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * With BINDERY_SESSION_HOST a session has an origin of its own. In a real browser: the launch's
 * URL and `/user/<session>/` on the service's host land on `<session>.sessions.test`, the
 * session's WebSockets work there, and its page can read nothing of the service's origin.
 * Chromium resolves *.sessions.test to loopback through --host-resolver-rules; the session is
 * a stub HTTP and WebSocket server routed like a real one.
 */

const run = randomBytes(4).toString('hex');
const prefix = `bindery-test-swhost-${run}`;
const session = `bindery-h${run}`;
const redis = new Redis({ maxRetriesPerRequest: 1 });
const routes = new RedisRouteTable(redis, { prefix });

let stub: Server;
let proxy: ReverseProxy;
let service: Server;
/** http://127.0.0.1:<port>, BINDERY_PUBLIC_URL. */
let publicUrl: string;
/** What the launch's `ready` event carries. */
let readyUrl: string;
let browser: Chromium;

const sessionPage = `<!doctype html><html><head><meta charset="utf-8"><title>session</title></head>
<body><script>
localStorage.setItem('planted', 'by the session');
window.echo = (text) => new Promise((resolve, reject) => {
  const socket = new WebSocket('ws://' + location.host + '/user/${session}/api/events');
  socket.onopen = () => socket.send(text);
  socket.onmessage = (event) => { resolve(event.data); socket.close(); };
  socket.onerror = () => reject(new Error('the WebSocket failed'));
});
window.read = (url) => fetch(url, { credentials: 'include' }).then(
  (response) => response.text().then((text) => 'read: ' + text),
  (error) => 'refused: ' + error.name,
);
</script></body></html>`;

beforeAll(async () => {
  stub = createServer((request, response) => {
    if ((request.url ?? '').split('?')[0] !== `/user/${session}/`)
      return void response.writeHead(404).end();
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'set-cookie': 'a=1; Path=/',
    });
    response.end(sessionPage);
  });
  new WebSocketServer({ server: stub }).on('connection', (socket, request) =>
    socket.on('message', (data) =>
      socket.send(`echo ${data.toString()} (Host ${request.headers.host})`),
    ),
  );
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  await routes.set(session, {
    target: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
  });

  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  const config = { publicUrl, sessionHost: '{session}.sessions.test' };
  readyUrl = sessionUrl(config, session);
  proxy = createReverseProxy({ routes, log: quietLog, ...config });
  const app: RequestListener = (request, response) =>
    response.writeHead(200, { 'content-type': 'text/plain' }).end(`the service's ${request.url}`);
  service = createServer(createHttpHandler(app, proxy));
  service.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
  await new Promise<void>((resolve) => service.listen(port, '127.0.0.1', resolve));
  browser = await launchChromium(['--host-resolver-rules=MAP *.sessions.test 127.0.0.1']);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  proxy?.close();
  for (const server of [service, stub]) {
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  }
  await redis.del(`${prefix}:routes`);
  redis.disconnect();
}, 30_000);

describe('a session on its own host (BINDERY_SESSION_HOST), in Chromium', () => {
  test('the ready URL and /user/<session>/ on the service host both land on the session host', async () => {
    const sessionOrigin = `http://${session}.sessions.test:${new URL(publicUrl).port}`;
    expect(readyUrl).toBe(`${sessionOrigin}/user/${session}/`);
    const page = await browser.context.newPage();
    await page.goto(`${publicUrl}/user/${session}/`);
    expect(page.url()).toBe(readyUrl);
    expect(await page.title()).toBe('session');
    await page.close();
  });

  test("the session's WebSockets work on its host, with that Host at the session", async () => {
    const page = await browser.context.newPage();
    await page.goto(readyUrl);
    expect(await page.evaluate(`window.echo('ping')`)).toBe(
      `echo ping (Host ${new URL(readyUrl).host})`,
    );
    await page.close();
  });

  test("the session's page reads nothing of the service's origin", async () => {
    const page = await browser.context.newPage();
    await page.goto(readyUrl);
    // The service's pages answer a cross-origin read only where they allow it, and none does.
    expect(await page.evaluate(`window.read(${JSON.stringify(`${publicUrl}/versions`)})`)).toBe(
      'refused: TypeError',
    );
    // Its own origin it reads, as Jupyter's front end does.
    expect(await page.evaluate(`window.read('/user/${session}/')`)).toMatch(/^read: <!doctype/);

    // Its cookie and storage stay on its host.
    expect(await browser.context.cookies(`${publicUrl}/`)).toEqual([]);
    const cookies = await browser.context.cookies(readyUrl);
    expect(cookies.map(({ name, domain, path }) => ({ name, domain, path }))).toEqual([
      { name: 'a', domain: `${session}.sessions.test`, path: `/user/${session}/` },
    ]);
    await page.goto(`${publicUrl}/`);
    expect(await page.evaluate(`localStorage.getItem('planted')`)).toBeNull();
    await page.close();
  });
});
