/**
 * The forwarder that serves a private package index to builds (src/build/index-forwarder.ts),
 * against a stub index on loopback that asks for basic credentials: what it adds, what it
 * rewrites, and whom it refuses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openIndexAccess } from '../../src/build/index-access.js';
import { startIndexForwarder, type IndexForwarder } from '../../src/build/index-forwarder.js';
import { UnavailableError } from '../../src/errors.js';
import { freePort } from '../helpers/free-port.js';

const CREDENTIALS = { username: 'builder', password: 'p@ss:word%' };
const EXPECTED = `Basic ${Buffer.from(`${CREDENTIALS.username}:${CREDENTIALS.password}`).toString('base64')}`;

let upstream: Server;
let upstreamOrigin: string;
let forwarder: IndexForwarder;
let base: string;
const seen: { method: string; url: string; authorization?: string; host?: string }[] = [];

beforeAll(async () => {
  upstream = createServer((request, response) => {
    seen.push({
      method: request.method ?? '',
      url: request.url ?? '',
      authorization: request.headers.authorization,
      host: request.headers.host,
    });
    if (request.headers.authorization !== EXPECTED) {
      response.writeHead(401, { 'www-authenticate': 'Basic realm="index"' });
      response.end();
      return;
    }
    const origin = `http://${request.headers.host}`;
    if (request.url === '/simple/demo/') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(
        `<a href="${origin}/packages/demo-1.0.whl#sha256=ab">1</a>` +
          `<a href="//${request.headers.host}/packages/demo-2.0.whl">2</a>` +
          `<a href="http://someone:secret@${request.headers.host}/packages/demo-3.0.whl">3</a>` +
          `<a href="https://files.example.org/demo-4.0.whl">4</a>` +
          `<a href="../../packages/demo-5.0.whl">5</a>`,
      );
    } else if (request.url === '/simple/moved/') {
      response.writeHead(302, { location: `${origin}/simple/demo/` });
      response.end();
    } else if (request.url === '/simple/elsewhere/') {
      response.writeHead(302, { location: 'https://files.example.org/demo/' });
      response.end();
    } else if (request.url === '/packages/demo-1.0.whl') {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      response.end(Buffer.from([1, 2, 3]));
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamOrigin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const withCredentials = new URL(`${upstreamOrigin}/simple/`);
  withCredentials.username = encodeURIComponent(CREDENTIALS.username);
  withCredentials.password = encodeURIComponent(CREDENTIALS.password);
  forwarder = await startIndexForwarder({
    indexes: [{ upstream: withCredentials.href, prefix: '0' }],
    host: '127.0.0.1',
    port: 0,
    clientSubnet: '127.0.0.0/8',
  });
  base = `http://127.0.0.1:${forwarder.port}`;
});

afterAll(async () => {
  await forwarder?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

test('adds the credentials, and links to the index come back through the forwarder', async () => {
  const response = await fetch(`${base}/0/simple/demo/`);
  expect(response.status).toBe(200);
  const page = await response.text();
  expect(page).toBe(
    `<a href="${base}/0/packages/demo-1.0.whl#sha256=ab">1</a>` +
      `<a href="${base}/0/packages/demo-2.0.whl">2</a>` +
      `<a href="${base}/0/packages/demo-3.0.whl">3</a>` +
      `<a href="https://files.example.org/demo-4.0.whl">4</a>` +
      `<a href="../../packages/demo-5.0.whl">5</a>`,
  );
  expect(seen.at(-1)).toEqual({
    method: 'GET',
    url: '/simple/demo/',
    authorization: EXPECTED,
    host: new URL(upstreamOrigin).host,
  });
  const wheel = await fetch(`${base}/0/packages/demo-1.0.whl`);
  expect(Buffer.from(await wheel.arrayBuffer())).toEqual(Buffer.from([1, 2, 3]));
});

test('a redirect within the index comes back through the forwarder; one elsewhere is passed on', async () => {
  const moved = await fetch(`${base}/0/simple/moved/`, { redirect: 'manual' });
  expect([moved.status, moved.headers.get('location')]).toEqual([302, '/0/simple/demo/']);
  const elsewhere = await fetch(`${base}/0/simple/elsewhere/`, { redirect: 'manual' });
  expect([elsewhere.status, elsewhere.headers.get('location')]).toEqual([
    302,
    'https://files.example.org/demo/',
  ]);
});

test('only GET and HEAD of a known index are forwarded', async () => {
  const before = seen.length;
  const post = await fetch(`${base}/0/simple/demo/`, { method: 'POST', body: 'x' });
  const unknown = await fetch(`${base}/1/simple/demo/`);
  const head = await fetch(`${base}/0/simple/demo/`, { method: 'HEAD' });
  expect([post.status, unknown.status, head.status]).toEqual([405, 404, 200]);
  expect(seen.slice(before).map(({ method }) => method)).toEqual(['HEAD']);
});

test('clients outside the build network are refused', async () => {
  const strict = await startIndexForwarder({
    indexes: [{ upstream: `${upstreamOrigin}/simple/`, prefix: '0' }],
    host: '127.0.0.1',
    port: 0,
    clientSubnet: '10.245.2.0/24',
  });
  try {
    const before = seen.length;
    const response = await fetch(`http://127.0.0.1:${strict.port}/0/simple/demo/`);
    expect(response.status).toBe(403);
    expect(seen.length).toBe(before);
  } finally {
    await strict.close();
  }
});

test('a port another process holds is said in a sentence', async () => {
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const port = (squatter.address() as AddressInfo).port;
  try {
    const opening = openIndexAccess(
      {
        pipIndexUrl: `https://u:p@index.example.org/simple/`,
        pipExtraIndexUrl: undefined,
        pipTrustedHost: undefined,
        indexPort: port,
      },
      async () => ({ gateway: '127.0.0.1', subnet: '127.0.0.0/8' }),
    );
    await expect(opening).rejects.toBeInstanceOf(UnavailableError);
    await expect(opening).rejects.toMatchObject({
      message: `The forwarder of the private package index could not listen on 127.0.0.1:${port} (EADDRINUSE); set BINDERY_BUILD_INDEX_PORT to a port free on this host.`,
    });
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});

test("only the index's own part of the origin is forwarded, however the path is written", async () => {
  // As a GitLab project's index: the token would open the rest of GitLab's API too.
  const scoped = await startIndexForwarder({
    indexes: [
      { upstream: `${upstreamOrigin}/api/v4/projects/1/packages/pypi/simple`, prefix: '0' },
    ],
    host: '127.0.0.1',
    port: 0,
    clientSubnet: '127.0.0.0/8',
  });
  try {
    const at = `http://127.0.0.1:${scoped.port}/0`;
    const before = seen.length;
    const statuses = [];
    for (const path of [
      '/api/v4/user',
      '/api/v4/projects/1/packages/pypi/simple/../../../../user',
      '/api/v4/projects/1/packages/pypi/%2e%2e/%2e%2e/%2e%2e/user',
      '/api/v4/projects/1/packages/pypi/simple/..%2f..%2f..%2fuser',
      '/api/v4/projects/1/packages/pypi%5c..%5cuser',
    ]) {
      statuses.push((await fetch(`${at}${path}`)).status);
    }
    expect(statuses).toEqual([404, 404, 404, 404, 404]);
    expect(seen.length).toBe(before);
    // Its files, beside the simple pages, are forwarded.
    await fetch(`${at}/api/v4/projects/1/packages/pypi/files/abc/demo-1.0.whl`);
    expect(seen.slice(before).map(({ url }) => url)).toEqual([
      '/api/v4/projects/1/packages/pypi/files/abc/demo-1.0.whl',
    ]);
  } finally {
    await scoped.close();
  }
});

test('builds at once on one network share the forwarder, which closes with the last of them', async () => {
  const port = await freePort();
  const settings = {
    pipIndexUrl: `${upstreamOrigin.replace('//', `//${CREDENTIALS.username}:x@`)}/simple/`,
    pipExtraIndexUrl: undefined,
    pipTrustedHost: undefined,
    indexPort: port,
  };
  const loopback = async () => ({ gateway: '127.0.0.1', subnet: '127.0.0.0/8' });
  const first = await openIndexAccess(settings, loopback);
  const second = await openIndexAccess(settings, loopback);
  const asks = async () =>
    fetch(`http://127.0.0.1:${port}/0/simple/demo/`).then(
      (response) => `HTTP ${response.status}`,
      (error: Error) => (error.cause as NodeJS.ErrnoException)?.code ?? error.message,
    );
  expect(first.buildArgs).toEqual(second.buildArgs);
  await first.close();
  // The upstream refuses these credentials: what matters is that the forwarder answered.
  expect(await asks()).toBe('HTTP 401');
  await second.close();
  expect(await asks()).toBe('ECONNREFUSED');
});
