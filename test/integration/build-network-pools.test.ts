/**
 * When Docker has no subnet left for another network (its default-address-pools give 31 bridge
 * networks), a build's network cannot be made: the build fails with a sentence saying so and
 * what to do, not Docker's words alone. Docker is played by a server on a Unix socket of this
 * test's own that answers as dockerd 20.10 does when its pools are used up.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { UnavailableError } from '../../src/errors.js';

let dir: string;
let server: Server;
let socket: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bindery-pools-'));
  socket = join(dir, 'docker.sock');
  server = createServer((request, response) => {
    const json = (status: number, body: unknown) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const path = new URL(request.url ?? '/', 'http://docker').pathname.replace(/^\/v[\d.]+/, '');
    if (request.method === 'GET' && path === '/networks')
      return json(200, [{ Name: 'bridge' }, { Name: 'a' }, { Name: 'b' }]);
    if (request.method === 'GET' && path.startsWith('/networks/'))
      return json(404, { message: 'network not found' });
    if (request.method === 'POST' && path === '/networks/create') {
      return json(400, {
        message:
          'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
      });
    }
    return json(500, { message: `unexpected ${request.method} ${path}` });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
}, 10_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test('a network Docker has no subnet for fails with a sentence: what, how many, what to do', async () => {
  const engine = new DockerEngine(`unix://${socket}`);
  const made = engine.ensureNetwork({
    name: 'bindery-builds-0badc0de',
    bridge: 'bindb0badc0de',
    interContainer: false,
    labels: {},
  });
  await expect(made).rejects.toThrow(UnavailableError);
  await expect(made).rejects.toThrow(
    'Docker has no subnet left for the network bindery-builds-0badc0de: its address pools are used up (3 networks exist). ' +
      'Remove networks no longer used (docker network prune), give dockerd more or smaller default-address-pools, ' +
      'or lower BINDERY_BUILD_CONCURRENCY.',
  );
}, 10_000);
