/**
 * A repository's own Dockerfile makes the Docker daemon fetch things on its behalf: `ADD <url>`
 * downloads from wherever the URL points, from the daemon's host, outside every sandbox rule;
 * `FROM` and `COPY --from` read any image the daemon has or can pull. These tests are the
 * attacks, each against servers of the test's own.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import type { BuildEvent } from '../../src/build-event.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RepositoryError } from '../../src/errors.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { createTestNetwork, type TestNetwork } from '../helpers/docker-network.js';

const exec = promisify(execFile);
const run = randomBytes(4).toString('hex');
const prefix = `bindery-test/d${run}-`;
const SECRET = `secret-${randomBytes(8).toString('hex')}`;
const engine = new DockerEngine();
const config = loadConfig({ BINDERY_IMAGE_PREFIX: prefix });
const builder = new Builder({ engine, config });
const dirs: string[] = [];
let network: TestNetwork;
/** Servers that must see nothing: on the host's loopback and on a network's gateway. */
const servers: { url: string; requests: string[]; server: Server }[] = [];
let otherImage: string;

async function serveSecret(host: string) {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.url ?? '');
    response.end(SECRET);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const entry = { url: `http://${host}:${port}`, requests, server };
  servers.push(entry);
  return entry;
}

async function repository(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bindery-dockerfile-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function attempt(dockerfile: string) {
  const events: BuildEvent[] = [];
  const dir = await repository({ Dockerfile: dockerfile });
  const outcome = await builder
    .build(parseSource(dir), { onEvent: (event) => events.push(event) })
    .then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
  return { ...outcome, log: events.map((event) => event.message).join('') };
}

beforeAll(async () => {
  network = await createTestNetwork();
  await serveSecret('127.0.0.1');
  await serveSecret(network.gateway);
  // Another repository's image, built by this Bindery, holding its own secret.
  const other = await builder.build(
    parseSource(
      await repository({
        Dockerfile: `FROM ${config.baseImage}\nRUN echo ${SECRET} > /tmp/other-secret\n`,
      }),
    ),
  );
  otherImage = other.imageName;
}, 300_000);

afterAll(async () => {
  for (const { server } of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await network?.remove();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(image);
  }
}, 120_000);

describe("the daemon fetches nothing a repository's Dockerfile points it at", () => {
  test.each([
    ['ADD <url> on the host loopback', 0],
    ['ADD <url> on a network gateway', 1],
  ])(
    '%s is refused with a sentence, and the server sees no request',
    async (_name, which) => {
      const target = servers[which]!;
      const { result, error, log } = await attempt(
        `FROM ${config.baseImage}\nADD ${target.url}/secret /tmp/s\n`,
      );
      expect(result).toBeUndefined();
      expect(error).toBeInstanceOf(RepositoryError);
      expect((error as Error).message).toMatch(/ADD.*downloads .* use RUN with curl or wget/);
      expect(target.requests).toEqual([]);
      expect(log).not.toContain(SECRET);
    },
    120_000,
  );

  test('ADD <url> through a build argument or an ARG default is refused too', async () => {
    const target = servers[0]!;
    const { error } = await attempt(
      `ARG SOURCE=${target.url}/secret\nFROM ${config.baseImage}\nARG SOURCE\nADD \${SOURCE} /tmp/s\n`,
    );
    expect(error).toBeInstanceOf(RepositoryError);
    expect(target.requests).toEqual([]);
  }, 120_000);

  test("FROM another repository's image is refused", async () => {
    const { result, error, log } = await attempt(`FROM ${otherImage}\nRUN cat /tmp/other-secret\n`);
    expect(result).toBeUndefined();
    expect(error).toBeInstanceOf(RepositoryError);
    expect((error as Error).message).toMatch(/FROM .* not an image this service shares/);
    expect(log).not.toContain(SECRET);
  }, 120_000);

  test("COPY --from another repository's image is refused", async () => {
    const { error, log } = await attempt(
      `FROM ${config.baseImage}\nCOPY --from=${otherImage} /tmp/other-secret /tmp/stolen\nRUN cat /tmp/stolen\n`,
    );
    expect(error).toBeInstanceOf(RepositoryError);
    expect(log).not.toContain(SECRET);
  }, 120_000);

  test('FROM a registry on a private address is refused, and it sees no request', async () => {
    const target = servers[0]!;
    const registry = new URL(target.url).host;
    const { error } = await attempt(`FROM ${registry}/library/private:latest\n`);
    expect(error).toBeInstanceOf(RepositoryError);
    expect(target.requests).toEqual([]);
  }, 120_000);

  test('the base image, a named stage and a stage index still build', async () => {
    const { result, error } = await attempt(
      [
        `FROM ${config.baseImage} AS first`,
        'RUN echo made > /tmp/made',
        `FROM ${config.baseImage}`,
        'COPY --from=first /tmp/made /tmp/from-name',
        'COPY --from=0 /tmp/made /tmp/from-index',
        '',
      ].join('\n'),
    );
    expect(error).toBeUndefined();
    expect(result?.cached).toBe(false);
  }, 180_000);
});
