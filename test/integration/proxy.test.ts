import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createHttpServer } from '../../src/web/http-server.js';
import { createReverseProxy, type ReverseProxy } from '../../src/proxy/reverse-proxy.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import {
  startSession,
  waitForJupyter,
  type StartedSession,
} from '../../src/sessions/start-session.js';
import { captureLog } from '../helpers/capture-log.js';

const run = randomBytes(4).toString('hex');
const config = loadConfig({ BINDERY_IMAGE_PREFIX: `bindery-test/p${run}-` });
const engine = new DockerEngine();
const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
const prefix = `bindery-test-${run}`;
const routes = new RedisRouteTable(redis, { prefix });

/** The proxy's clock: tests move it to see activity throttled and reported. */
let clock = 1_700_000_000_000;
const activity: { session: string; at: number }[] = [];
const captured = captureLog('info');
/** The proxy's failure lines (not its access log) from the `from`th entry on, as messages. */
const failuresFrom = (from: number) =>
  captured
    .entries()
    .slice(from)
    .filter((entry) => entry.level >= 40 && entry.access !== true)
    .map(({ msg }) => msg);
let proxy: ReverseProxy;
let server: Server;
/** http://127.0.0.1:<port>, the proxy. */
let origin: string;

let imageName: string | undefined;
let session: StartedSession | undefined;
let name: string;
let token: string;
/** The session's Jupyter at its container address, for comparing with what the proxy serves. */
let direct: string;
const sockets: WebSocket[] = [];
let echo: Server | undefined;

beforeAll(async () => {
  const spec = parseSource(join(import.meta.dirname, '../fixtures/repos/default'));
  ({ imageName } = await new Builder({ engine, config }).build(spec));
  session = await startSession({ engine, config, imageName, repoLabel: spec.repoLabel });
  ({ token } = session);
  name = session.container.name;
  direct = session.url;
  await waitForJupyter(session.url, token);
  await routes.set(name, { target: session.container.url });

  proxy = createReverseProxy({
    routes,
    now: () => clock,
    onActivity: (session, at) => void activity.push({ session, at }),
    log: captured.log,
  });
  server = createHttpServer((request, response) => proxy.handleRequest(request, response), proxy);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 300_000);

afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  proxy?.close();
  await new Promise((resolve) => server?.close(resolve));
  await new Promise((resolve) => (echo ? echo.close(resolve) : resolve(undefined)));
  if (session) await engine.removeContainer(session.container.id);
  if (imageName) await engine.removeImage(imageName);
  await redis.del(`${prefix}:routes`);
  await redis.quit();
}, 60_000);

const user = (path = '') => `${origin}/user/${name}/${path}`;

/** Opens a WebSocket through the proxy; resolves once it is open. */
function openSocket(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const socket = new WebSocket(url, options);
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) =>
      reject(new Error(`HTTP ${response.statusCode}`)),
    );
  });
}

/** A Jupyter messaging-protocol execute_request (protocol 5.3). */
function executeRequest(code: string) {
  return {
    header: {
      msg_id: randomUUID(),
      session: randomUUID(),
      username: 'bindery-test',
      date: new Date().toISOString(),
      msg_type: 'execute_request',
      version: '5.3',
    },
    parent_header: {},
    metadata: {},
    channel: 'shell',
    content: {
      code,
      silent: false,
      store_history: false,
      user_expressions: {},
      allow_stdin: false,
      stop_on_error: true,
    },
    buffers: [],
  };
}

interface KernelMessage {
  channel: string;
  header: { msg_type: string };
  parent_header: { msg_id?: string };
  content: { name?: string; text?: string; status?: string };
}

/** Sends `code` to the kernel; resolves with its stdout and its execute_reply's status. */
function execute(socket: WebSocket, code: string): Promise<{ stdout: string; status: string }> {
  const request = executeRequest(code);
  let stdout = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no execute_reply; stdout "${stdout}"`)),
      60_000,
    );
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = JSON.parse(data.toString()) as KernelMessage;
      if (message.parent_header.msg_id !== request.header.msg_id) return;
      if (message.header.msg_type === 'stream' && message.content.name === 'stdout') {
        stdout += message.content.text;
      }
      if (message.header.msg_type === 'execute_reply') {
        clearTimeout(timer);
        // iopub output comes before the reply on the shell channel, but on another socket.
        setTimeout(() => resolve({ stdout, status: message.content.status ?? '' }), 200);
      }
    });
    socket.send(JSON.stringify(request));
  });
}

let kernelId: string;

describe('the reverse proxy in front of a real Jupyter session', () => {
  test("routes to the engine's address for the session, where its Jupyter answers /api", async () => {
    const { url } = session!.container;
    expect(url).toBe(`http://${session!.container.address}:8888`);
    const listed = (await engine.listSessions()).find((container) => container.name === name);
    expect(listed?.url).toBe(url);
    const api = await fetch(`${url}/user/${name}/api`);
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ version: expect.stringMatching(/^\d+\.\d+/) });
  }, 30_000);

  test('serves api/status at /user/<name>/ with the token in the query, and refuses it without', async () => {
    const status = await fetch(user(`api/status?token=${token}`));
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ kernels: 0 });
    expect((await fetch(user('api/status'))).status).toBe(403);
  }, 30_000);

  test('serves JupyterLab and Notebook 7, and redirects /user/<name> to /user/<name>/', async () => {
    const lab = await fetch(user(`lab?token=${token}`));
    expect(lab.status).toBe(200);
    expect(await lab.text()).toContain('<title>JupyterLab</title>');
    const tree = await fetch(user(`tree?token=${token}`));
    expect(tree.status).toBe(200);
    expect(await tree.text()).toContain('"appName": "Jupyter Notebook"');
    const bare = await fetch(`${origin}/user/${name}?token=${token}`, { redirect: 'manual' });
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe(`/user/${name}/?token=${token}`);
  }, 30_000);

  test('POST api/kernels with the token in a header starts a kernel', async () => {
    const response = await fetch(user('api/kernels'), {
      method: 'POST',
      headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'python3' }),
    });
    expect(response.status).toBe(201);
    const kernel = (await response.json()) as { id: string; name: string };
    expect(kernel.name).toBe('python3');
    kernelId = kernel.id;
    const listed = await fetch(`${direct}api/kernels?token=${token}`);
    expect(((await listed.json()) as { id: string }[]).map((k) => k.id)).toContain(kernelId);
  }, 60_000);

  test('runs code in the kernel over the channels WebSocket, and reports that traffic', async () => {
    const url = `${origin.replace('http', 'ws')}/user/${name}/api/kernels/${kernelId}/channels?token=${token}`;
    // The browser's Origin: Jupyter accepts it because the proxy keeps the client's Host.
    const socket = await openSocket(url, { origin });
    clock += 10_000;
    const before = activity.length;
    const result = await execute(socket, 'print(6*7)');
    expect(result).toEqual({ stdout: '42\n', status: 'ok' });
    expect(activity.slice(before)).toEqual([{ session: name, at: clock }]);
    socket.close();
  }, 90_000);

  test('keeps the Host a browser sent: cookie-authenticated WebSockets pass the Origin check', async () => {
    // A token in the URL skips Jupyter's Origin check; a browser's later sockets carry the
    // login cookie instead, and then Jupyter compares Origin with Host.
    const tree = await fetch(user(`tree?token=${token}`));
    const cookie = tree.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    expect(cookie).toMatch(/^username-/);
    const url = `${origin.replace('http', 'ws')}/user/${name}/api/kernels/${kernelId}/channels`;
    const socket = await openSocket(url, { origin, headers: { cookie } });
    expect(await execute(socket, 'print("cookie")')).toEqual({ stdout: 'cookie\n', status: 'ok' });
    socket.close();
    await expect(
      openSocket(url, { origin: 'https://elsewhere.example', headers: { cookie } }),
    ).rejects.toThrow('HTTP 403');
  }, 90_000);

  test('streams a large upload and download intact', async () => {
    const content = randomBytes(6 * 2 ** 20);
    const saved = await fetch(user('api/contents/large.bin'), {
      method: 'PUT',
      headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'file', format: 'base64', content: content.toString('base64') }),
    });
    expect(saved.status).toBe(201);
    const proxied = await fetch(user(`files/large.bin?token=${token}`));
    expect(proxied.status).toBe(200);
    const body = Buffer.from(await proxied.arrayBuffer());
    const straight = Buffer.from(
      await (await fetch(`${direct}files/large.bin?token=${token}`)).arrayBuffer(),
    );
    expect(body.length).toBe(content.length);
    expect(body.equals(content)).toBe(true);
    expect(straight.equals(body)).toBe(true);
  }, 60_000);

  test('answers 404 with a page for a session it has no route for, over HTTP and WebSocket', async () => {
    const page = await fetch(`${origin}/user/nobody/tree`);
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('No session named &#34;nobody&#34; is running here');
    expect(html).toContain('<a href="/">');
    const api = await fetch(`${origin}/user/nobody/api/status`);
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({
      status: 404,
      message: expect.stringContaining('nobody'),
    });
    await expect(
      openSocket(`${origin.replace('http', 'ws')}/user/nobody/api/events`),
    ).rejects.toThrow('HTTP 404');
  });

  test('reports HTTP activity per session, at most once per second', async () => {
    clock += 10_000;
    const before = activity.length;
    for (let i = 0; i < 5; i++) await (await fetch(user(`api/status?token=${token}`))).text();
    clock += 999;
    await (await fetch(user(`api/status?token=${token}`))).text();
    clock += 1;
    await (await fetch(user(`api/status?token=${token}`))).text();
    expect(activity.slice(before)).toEqual([
      { session: name, at: clock - 1_000 },
      { session: name, at: clock },
    ]);
  });

  test('forwards the client Host and adds X-Forwarded-For, -Proto and -Host', async () => {
    let seen: { url?: string; headers?: IncomingHttpHeaders } = {};
    echo = createServer((request, response) => {
      seen = { url: request.url, headers: request.headers };
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.end('echoed');
    });
    await new Promise<void>((resolve) => echo!.listen(0, '127.0.0.1', resolve));
    await routes.set(`echo-${run}`, {
      target: `http://127.0.0.1:${(echo.address() as AddressInfo).port}`,
    });
    const response = await fetch(`${origin}/user/echo-${run}/a/b?c=d&e=%20f`, {
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-custom': 'kept' },
    });
    expect(await response.text()).toBe('echoed');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(seen.url).toBe(`/user/echo-${run}/a/b?c=d&e=%20f`);
    expect(seen.headers).toMatchObject({
      host: origin.slice('http://'.length),
      'x-custom': 'kept',
      'x-forwarded-for': '203.0.113.7, 127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': origin.slice('http://'.length),
    });
    await routes.remove(`echo-${run}`);
  });

  test('answers 503 when a target refuses and 502 when it answers gibberish, one log line each', async () => {
    // A port that was just free refuses; the session runs the repository's code, so its
    // "Jupyter" may answer anything: the proxy must answer for it and carry on.
    const gibberish = createNetServer((socket) => {
      socket.resume(); // read the request, or its end never comes and close() waits forever
      socket.end('not http at all\r\n\r\n');
    });
    await new Promise<void>((resolve) => gibberish.listen(0, '127.0.0.1', resolve));
    const free = createNetServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const freePort = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    await routes.set(`refusing-${run}`, { target: `http://127.0.0.1:${freePort}` });
    await routes.set(`gibberish-${run}`, {
      target: `http://127.0.0.1:${(gibberish.address() as AddressInfo).port}`,
    });
    const from = captured.entries().length;
    try {
      const refused = await fetch(`${origin}/user/refusing-${run}/api/status`);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({
        message: expect.stringContaining('is no longer running'),
      });
      const garbled = await fetch(`${origin}/user/gibberish-${run}/tree`);
      expect(garbled.status).toBe(502);
      expect(await garbled.text()).toContain('answered with something the proxy could not read');
      expect(failuresFrom(from)).toEqual([
        `GET /user/refusing-${run}/api/status → 127.0.0.1:${freePort}: ECONNREFUSED (session not running)`,
        expect.stringMatching(
          new RegExp(`^GET /user/gibberish-${run}/tree → 127\\.0\\.0\\.1:\\d+: [^\\n]+$`),
        ),
      ]);
    } finally {
      await routes.remove(`refusing-${run}`);
      await routes.remove(`gibberish-${run}`);
      await new Promise((resolve) => gibberish.close(resolve));
    }
  });

  // Last: it removes the session's container.
  test('answers 503 with a page once the container is gone, and closes its WebSockets', async () => {
    const url = `${origin.replace('http', 'ws')}/user/${name}/api/kernels/${kernelId}/channels?token=${token}`;
    const socket = await openSocket(url, { origin });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const from = captured.entries().length;
    await engine.removeContainer(session!.container.id);
    await closed;

    expect(await routes.get(name)).toBeDefined();
    const page = await fetch(user(`tree?token=${token}`));
    expect(page.status).toBe(503);
    expect(await page.text()).toContain(`The session &#34;${name}&#34; is no longer running`);
    const failures = failuresFrom(from);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(
      new RegExp(
        `^GET /user/${name}/tree → [\\d.]+:8888: (EHOSTUNREACH|ECONNREFUSED|ETIMEDOUT) \\(session not running\\)$`,
      ),
    );
    await expect(openSocket(url, { origin })).rejects.toThrow('HTTP 503');
  }, 60_000);
});

describe('RedisRouteTable', () => {
  test('shares routes through Redis, caching found routes for the ttl only', async () => {
    let now = 0;
    const here = new RedisRouteTable(redis, { prefix, cacheTtlMs: 2_000, now: () => now });
    const there = new RedisRouteTable(redis, { prefix, cacheTtlMs: 2_000, now: () => now });
    const route = { target: 'http://10.0.0.1:8888' };
    await here.set('cached', route);
    expect(await there.get('cached')).toEqual(route);
    expect((await there.all()).get('cached')).toEqual(route);

    await here.remove('cached');
    expect(await here.get('cached')).toBeUndefined();
    // Another process keeps its cached copy until the ttl passes, then asks Redis again.
    expect(await there.get('cached')).toEqual(route);
    now += 2_000;
    expect(await there.get('cached')).toBeUndefined();
    // Misses are not cached: a route set elsewhere is seen at once.
    await here.set('cached', route);
    expect(await there.get('cached')).toEqual(route);
    await here.remove('cached');
  });
});
