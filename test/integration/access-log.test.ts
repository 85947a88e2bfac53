import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createReverseProxy, type ReverseProxy } from '../../src/proxy/reverse-proxy.js';
import { BuildLog } from '../../src/queue/build-log.js';
import { BuildQueue } from '../../src/queue/build-queue.js';
import type { Sandbox } from '../../src/sandbox/prepare-sandbox.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { createApp, createHttpHandler } from '../../src/web/create-app.js';
import { captureLog, type LogEntry } from '../helpers/capture-log.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The access log of a service wired as `bindery serve` wires it (the Express app and the proxy
 * behind one listener), with a stand-in Jupyter on loopback routed through Redis: one line per
 * request, with the session's name, and never a token, whichever way it came.
 */
const run = randomBytes(4).toString('hex');
const namespace = `access-log-${run}`;
const session = `bindery-${run}`;
const SECRET = `secret-${randomBytes(8).toString('hex')}`;
const redis = new Redis({ maxRetriesPerRequest: 1 });
const routes = new RedisRouteTable(redis, { prefix: namespace });
const builds = new BuildQueue({
  connection: redis,
  log: new BuildLog(redis),
  queueName: `bindery-builds-${namespace}`,
});
const captured = captureLog('debug');

const unusedSandbox: Sandbox = {
  network: 'unused',
  policy: { bridge: 'unused', ports: [], allowCidrs: [], hostAddresses: [], resolvers: [] },
  check: () => Promise.reject(new Error('the access log test launches nothing')),
};

let jupyter: Server;
let service: Server;
let proxy: ReverseProxy;
let origin: string;

beforeAll(async () => {
  jupyter = createServer((request, response) => response.end(`jupyter ${request.url}`));
  const sockets = new WebSocketServer({ server: jupyter });
  sockets.on('connection', (socket) => socket.send('hello'));
  await new Promise<void>((resolve) => jupyter.listen(0, '127.0.0.1', resolve));
  await routes.set(session, {
    target: `http://127.0.0.1:${(jupyter.address() as AddressInfo).port}`,
  });
  const app = createApp({
    config: loadConfig({}),
    engine: new DockerEngine(),
    resolve: () => Promise.reject(new Error('the access log test resolves no specs')),
    builds,
    store: new SessionStore(redis, namespace),
    routes,
    sandbox: unusedSandbox,
    redis,
    namespace,
    version: 'test',
    log: captured.log,
  });
  proxy = createReverseProxy({ routes, log: captured.log });
  service = createServer(createHttpHandler(app, proxy));
  service.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
});

afterAll(async () => {
  proxy.close();
  service.closeAllConnections();
  jupyter.closeAllConnections();
  await new Promise((resolve) => service.close(resolve));
  await new Promise((resolve) => jupyter.close(resolve));
  await builds.close();
  const keys = await redis.keys(`*${namespace}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

/** The access log line of the request to `path` (the path as logged), once written. */
async function accessLine(path: string): Promise<LogEntry> {
  let found: LogEntry | undefined;
  await waitFor(() => {
    found = captured.entries().find((entry) => entry.access === true && entry.path === path);
    return found !== undefined;
  }, `the access log line of ${path}`);
  return found!;
}

describe('the access log', () => {
  test('a proxied request: its session, status and time, and no token from the query, header or cookie', async () => {
    const response = await fetch(
      `${origin}/user/${session}/api/contents?token=${SECRET}&content=1&_xsrf=${SECRET}`,
      { headers: { authorization: `token ${SECRET}`, cookie: `_xsrf=${SECRET}` } },
    );
    expect(response.status).toBe(200);
    // The session still got what it was sent: only the log leaves the token out.
    expect(await response.text()).toContain(`token=${SECRET}`);
    const line = await accessLine(`/user/${session}/api/contents?content=1`);
    expect(line).toMatchObject({
      // A session's many successful requests are at debug; LOG_LEVEL=debug shows them.
      level: 20,
      component: 'proxy',
      method: 'GET',
      status: 200,
      session,
      client: '127.0.0.1',
      ms: expect.any(Number),
    });
    expect(captured.text()).not.toContain(SECRET);
  });

  test("a page of the service's own, at info, without the token", async () => {
    const response = await fetch(`${origin}/v2/gh/jupyterlab/demo/HEAD?token=${SECRET}`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    expect(response.status).toBe(200);
    const line = await accessLine('/v2/gh/jupyterlab/demo/HEAD');
    expect(line).toMatchObject({ level: 30, component: 'web', method: 'GET', status: 200 });
    expect(line).not.toHaveProperty('session');
    expect(captured.text()).not.toContain(SECRET);
  });

  test('a session that is not there: 404 at info, naming it', async () => {
    const response = await fetch(`${origin}/user/${session}-gone/lab?token=${SECRET}`);
    expect(response.status).toBe(404);
    const line = await accessLine(`/user/${session}-gone/lab`);
    expect(line).toMatchObject({ level: 30, status: 404, session: `${session}-gone` });
    expect(captured.text()).not.toContain(SECRET);
  });

  test('a WebSocket: one line when it opens (101), with its session and without the token', async () => {
    const socket = new WebSocket(
      `${origin.replace('http', 'ws')}/user/${session}/api/kernels/k/channels?token=${SECRET}`,
      { headers: { authorization: `token ${SECRET}` } },
    );
    await new Promise((resolve, reject) => socket.once('message', resolve).once('error', reject));
    socket.close();
    const line = await accessLine(`/user/${session}/api/kernels/k/channels`);
    expect(line).toMatchObject({ level: 30, status: 101, upgrade: true, session });
    expect(captured.text()).not.toContain(SECRET);
  });

  test('a session whose Jupyter is gone: 503 at warn', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await routes.set(`${session}-dead`, { target: `http://127.0.0.1:${port}` });
    const response = await fetch(`${origin}/user/${session}-dead/lab?token=${SECRET}`);
    expect(response.status).toBe(503);
    const line = await accessLine(`/user/${session}-dead/lab`);
    expect(line).toMatchObject({ level: 40, status: 503, session: `${session}-dead` });
    expect(captured.text()).not.toContain(SECRET);
  });
});
