import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createReverseProxy, type ReverseProxy } from '../../src/proxy/reverse-proxy.js';
import { createHttpHandler } from '../../src/web/create-app.js';
import { freePort } from '../helpers/free-port.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * A session must not claim the service's origin. Its Jupyter is a stub HTTP and WebSocket
 * server here, routed through Redis like a real session, answering what a hostile repository's
 * server could answer. Two services share it: one where sessions live under /user/<session>/
 * on the service's origin, one with BINDERY_SESSION_HOST where each has a host of its own.
 */

const run = randomBytes(4).toString('hex');
const prefix = `bindery-test-origin-${run}`;
const redis = new Redis({ maxRetriesPerRequest: 1 });
const routes = new RedisRouteTable(redis, { prefix });
const session = `bindery-o${run}`;
const other = `bindery-p${run}`;

interface Seen {
  method?: string;
  url?: string;
  headers?: IncomingHttpHeaders;
}
/** What the session's stub (and the other session's) last received. */
const seen: Record<string, Seen[]> = { [session]: [], [other]: [] };

/** Origin-wide headers a hostile session answers with, each of which must be dropped. */
const ORIGIN_WIDE = {
  'service-worker-allowed': '/',
  'clear-site-data': '"cookies", "storage"',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'alt-svc': 'h2=":8443"',
  nel: '{"report_to":"x","max_age":86400,"include_subdomains":true}',
  'report-to': '{"group":"x","max_age":86400,"endpoints":[{"url":"https://collector.test/"}]}',
};

const servers: Server[] = [];
const proxies: ReverseProxy[] = [];
const sockets: WebSocket[] = [];

/** A stub Jupyter for `name`: HTTP answers per path, WebSockets echo. */
async function startStub(name: string): Promise<string> {
  const server = createServer((request, response) => {
    seen[name]!.push({ method: request.method, url: request.url, headers: request.headers });
    request.resume();
    const path = (request.url ?? '').split('?')[0];
    if (path?.endsWith('/hostile')) {
      response.writeHead(200, { ...ORIGIN_WIDE, 'x-kept': 'yes' });
    } else if (path?.endsWith('/cookies')) {
      response.setHeader('set-cookie', [
        'a=1; Path=/',
        `b=2; Path=/user/${name}/lab; Domain=127.0.0.1; HttpOnly`,
        'c=3',
        `d=4; Path=/user/${other === name ? session : other}/`,
        `e=5; path=/user/${name}-evil/`,
        `f=6; Path=/user/${name}`,
        `g=7; Path=/user/${name}/; domain=.sessions.test; Path=/`,
        `h=8; Path=no-slash`,
      ]);
    }
    response.end(`${name} ${request.method} ${request.url}`);
  });
  const sockets = new WebSocketServer({ server });
  sockets.on('headers', (headers) =>
    headers.push('Set-Cookie: ws=1; Path=/', 'Service-Worker-Allowed: /'),
  );
  sockets.on('connection', (socket, request) => {
    seen[name]!.push({ method: 'UPGRADE', url: request.url, headers: request.headers });
    socket.on('message', (data) => socket.send(`${name} echoes ${data.toString()}`));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The service's own pages: whatever the proxy does not own. */
const app: RequestListener = (request, response) => response.end(`service ${request.url}`);

/** A service mounting the proxy as `bindery serve` does; resolves to its port. */
async function startService(options: { sessionHost?: string; publicUrl?: string } = {}) {
  const proxy = createReverseProxy({ routes, log: quietLog, ...options });
  proxies.push(proxy);
  const server = createServer(createHttpHandler(app, proxy));
  server.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
  servers.push(server);
  await new Promise<void>((resolve) =>
    server.listen(
      options.publicUrl ? Number(new URL(options.publicUrl).port) : 0,
      '127.0.0.1',
      resolve,
    ),
  );
  return (server.address() as AddressInfo).port;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to 127.0.0.1:`port` with the Host header a browser would send. */
function send(port: number, path: string, options: { host?: string; method?: string } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: { host: options.host ?? `127.0.0.1:${port}` },
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** Opens a WebSocket to 127.0.0.1:`port` with `host` as its Host and Origin; resolves once open. */
function openSocket(port: number, path: string, host = `127.0.0.1:${port}`) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, {
    headers: { host },
    origin: `http://${host}`,
  });
  sockets.push(socket);
  return new Promise<{ socket: WebSocket; headers: IncomingHttpHeaders }>((resolve, reject) => {
    socket.once('upgrade', (response) => {
      socket.once('open', () => resolve({ socket, headers: response.headers }));
    });
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => reject(new Error(`HTTP ${response.statusCode}: ${body}`)));
    });
  });
}

/** Sends one message and resolves with the first answer. */
function echo(socket: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('message', (data) => resolve(data.toString()));
    socket.send(text);
  });
}

/** Sends a raw upgrade request and resolves with everything the proxy answers until it closes. */
function rawUpgrade(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
      ),
    );
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      // The answer's head is all these tests read; the raw session keeps its socket open.
      if (text.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

let shared: number;
let hosted: number;
const sessionHost = (name: string) => `${name}.sessions.test:${hosted}`;

beforeAll(async () => {
  await routes.set(session, { target: await startStub(session) });
  await routes.set(other, { target: await startStub(other) });
  shared = await startService();
  // The session host's port comes from the public URL, so the port must be known first.
  hosted = await freePort();
  await startService({
    sessionHost: '{session}.sessions.test',
    publicUrl: `http://127.0.0.1:${hosted}`,
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  for (const proxy of proxies) proxy.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await redis.del(`${prefix}:routes`);
  redis.disconnect();
});

describe('sessions on the service origin (no BINDERY_SESSION_HOST)', () => {
  test('a session answering Service-Worker-Allowed: / and other origin-wide headers has them dropped', async () => {
    const answer = await send(shared, `/user/${session}/hostile`);
    expect(answer.status).toBe(200);
    for (const name of Object.keys(ORIGIN_WIDE)) expect(answer.headers[name]).toBeUndefined();
    expect(answer.headers['x-kept']).toBe('yes');
  });

  test('a session answering Set-Cookie: a=1; Path=/ sets it for /user/<session>/ only, with no Domain', async () => {
    const answer = await send(shared, `/user/${session}/cookies`);
    expect(answer.headers['set-cookie']).toEqual([
      `a=1; Path=/user/${session}/`,
      `b=2; HttpOnly; Path=/user/${session}/lab`,
      'c=3',
      `d=4; Path=/user/${session}/`,
      `e=5; Path=/user/${session}/`,
      `f=6; Path=/user/${session}`,
      `g=7; Path=/user/${session}/`,
      // No valid Path: the default path, /user/<session>, is already the session's.
      'h=8',
    ]);
  });

  test('the WebSocket handshake answer is confined too, and the socket still works', async () => {
    const { socket, headers } = await openSocket(shared, `/user/${session}/api/events`);
    expect(headers['set-cookie']).toEqual([`ws=1; Path=/user/${session}/`]);
    expect(headers['service-worker-allowed']).toBeUndefined();
    expect(await echo(socket, 'hello')).toBe(`${session} echoes hello`);
    socket.close();
  });
});

describe('a session answering an upgrade with a head browsers read differently', () => {
  const raw = `raw-${run}`;
  let answer = '';
  let server: ReturnType<typeof createNetServer>;
  const connections = new Set<Socket>();

  beforeAll(async () => {
    server = createNetServer((socket) => {
      connections.add(socket);
      socket.once('data', () => socket.write(answer));
      socket.on('error', () => {});
      socket.on('close', () => connections.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    await routes.set(raw, { target: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await routes.remove(raw);
    for (const socket of connections) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  test.each([
    [
      'bare LF line ends',
      'HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nSet-Cookie: a=1; Path=/\n\n',
    ],
    [
      'a folded Set-Cookie',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSet-Cookie: a=1\r\n ; Path=/\r\n\r\n',
    ],
    [
      'a folded header after a dropped one',
      'HTTP/1.1 101 Switching Protocols\r\nService-Worker-Allowed: /\r\n x\r\nSet-Cookie: a=1; Path=/\r\n\r\n',
    ],
  ])('%s: the client gets CRLF lines with the cookie confined', async (_what, head) => {
    answer = head;
    const text = await rawUpgrade(shared, `/user/${raw}/api/events`);
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(lines).toContain(`Set-Cookie: a=1; Path=/user/${raw}/`);
    expect(text.toLowerCase()).not.toContain('service-worker-allowed');
    expect(text).not.toMatch(/[^\r]\n/);
  });

  test('a head with a bare CR is refused with a 502 page, never passed on', async () => {
    answer = 'HTTP/1.1 101 Switching Protocols\r\nX: y\rSet-Cookie: a=1; Path=/\r\n\r\n';
    const text = await rawUpgrade(shared, `/user/${raw}/api/events`);
    expect(text).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(text).not.toContain('a=1');
  });
});

describe('sessions on their own host (BINDERY_SESSION_HOST={session}.sessions.test)', () => {
  test('/user/<session>/… on the service host only redirects to the session host', async () => {
    seen[session]!.length = 0;
    const page = await send(hosted, `/user/${session}/lab?token=t`);
    expect(page.status).toBe(302);
    expect(page.headers.location).toBe(
      `http://${sessionHost(session)}/user/${session}/lab?token=t`,
    );
    const post = await send(hosted, `/user/${session}/api/kernels`, { method: 'POST' });
    expect(post.status).toBe(307);
    expect(post.headers.location).toBe(
      `http://${sessionHost(session)}/user/${session}/api/kernels`,
    );
    await expect(openSocket(hosted, `/user/${session}/api/events`)).rejects.toThrow(
      `is served on its own host name, not here: connect to http://${sessionHost(session)}/user/${session}/api/events`,
    );
    expect(seen[session]).toEqual([]);
    expect((await send(hosted, '/versions')).body).toBe('service /versions');
  });

  test('the session host serves the session at /user/<session>/, keeping the Host Jupyter compares with Origin', async () => {
    seen[session]!.length = 0;
    const answer = await send(hosted, `/user/${session}/api/status?x=1`, {
      host: sessionHost(session),
    });
    expect(answer.body).toBe(`${session} GET /user/${session}/api/status?x=1`);
    expect(seen[session]![0]!.headers).toMatchObject({
      host: sessionHost(session),
      'x-forwarded-host': sessionHost(session),
    });
  });

  test('maps paths outside /user/<session>/ into it, and never reaches another session', async () => {
    const host = sessionHost(session);
    const root = await send(hosted, '/', { host });
    expect([root.status, root.headers.location]).toEqual([302, `/user/${session}/`]);
    const lab = await send(hosted, '/lab?reset', { host });
    expect([lab.status, lab.headers.location]).toEqual([302, `/user/${session}/lab?reset`]);
    const bare = await send(hosted, `/user/${session}?token=t`, { host });
    expect([bare.status, bare.headers.location]).toEqual([302, `/user/${session}/?token=t`]);
    const post = await send(hosted, '/api/kernels', { host, method: 'POST' });
    expect(post.body).toBe(`${session} POST /user/${session}/api/kernels`);

    seen[other]!.length = 0;
    const elsewhere = await send(hosted, `/user/${other}/api/status`, { host, method: 'POST' });
    expect(elsewhere.body).toBe(`${session} POST /user/${session}/user/${other}/api/status`);
    const page = await send(hosted, `/user/${other}/api/status`, { host });
    expect(page.headers.location).toBe(`/user/${session}/user/${other}/api/status`);
    expect(seen[other]).toEqual([]);
  });

  test('confines its cookies and drops origin-wide headers there too', async () => {
    const host = sessionHost(session);
    const hostile = await send(hosted, `/user/${session}/hostile`, { host });
    expect(hostile.headers['service-worker-allowed']).toBeUndefined();
    const cookies = await send(hosted, `/user/${session}/cookies`, { host });
    expect(cookies.headers['set-cookie']).toContain(`g=7; Path=/user/${session}/`);
    expect(cookies.headers['set-cookie']?.join('\n')).not.toMatch(/domain/i);
  });

  test('WebSockets work on the session host, with the handshake confined', async () => {
    const host = sessionHost(session);
    const { socket, headers } = await openSocket(hosted, `/user/${session}/api/events`, host);
    expect(await echo(socket, 'over its own host')).toBe(`${session} echoes over its own host`);
    expect(headers['set-cookie']).toEqual([`ws=1; Path=/user/${session}/`]);
    socket.close();
    const mapped = await openSocket(hosted, '/api/events', host);
    expect(seen[session]!.at(-1)).toMatchObject({
      method: 'UPGRADE',
      url: `/user/${session}/api/events`,
    });
    mapped.socket.close();
  });

  test('a session host with no route answers 404 with a link to the service', async () => {
    const answer = await send(hosted, '/user/nobody/', { host: 'nobody.sessions.test' });
    expect(answer.status).toBe(404);
    expect(answer.body).toContain(`<a href="http://127.0.0.1:${hosted}/">`);
  });
});
