import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { removeTestSandbox, testSessionNetwork } from '../helpers/test-service.js';
import { waitForHealthy } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'deploy/compose.yml');
/** Kept between runs: its layers below the compiled command are reused. */
const IMAGE = 'bindery/service:test';

const run = randomBytes(3).toString('hex');
const project = `bindery-compose-${run}`;
const prefix = `bindery-test/compose${run}-`;
const TOKEN = `token-${run}`;
let env: Record<string, string> = {};
let url = '';
let git: GitServer;

const compose = (...args: string[]) =>
  exec('docker-compose', ['-p', project, '-f', COMPOSE_FILE, ...args], {
    env: { ...process.env, ...env },
    maxBuffer: 64 * 2 ** 20,
  });

beforeAll(async () => {
  await exec(join(ROOT, 'deploy/service-image/build.sh'), [IMAGE], { maxBuffer: 64 * 2 ** 20 });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = {
    BINDERY_IMAGE: IMAGE,
    PORT: String(port),
    BINDERY_PUBLIC_URL: url,
    BINDERY_REDIS_PORT: String(await freePort()),
    BINDERY_REGISTRY_PORT: String(await freePort()),
    BINDERY_SESSION_NETWORK: testSessionNetwork(`compose${run}`),
    BINDERY_IMAGE_PREFIX: prefix,
    BINDERY_API_TOKENS: TOKEN,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
  };
  env.BINDERY_REGISTRY = `127.0.0.1:${env.BINDERY_REGISTRY_PORT}`;
  git = await startGitServer();
  await compose('up', '-d');
}, 900_000);

afterAll(async () => {
  await compose('down', '--volumes', '--timeout', '20');
  await git?.close();
  // The sessions it started are on this file's own network; its images are named under the
  // registry, `127.0.0.1:<port>/<prefix>…`.
  const engine = new DockerEngine();
  const network = env.BINDERY_SESSION_NETWORK!;
  const { stdout: sessions } = await exec('docker', [
    'ps',
    '-aq',
    '--filter',
    `network=${network}`,
  ]);
  for (const id of sessions.split('\n').filter(Boolean)) await engine.removeContainer(id);
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.includes(prefix))) {
    await engine.removeImage(image);
  }
  await removeTestSandbox(loadConfig({ BINDERY_SESSION_NETWORK: env.BINDERY_SESSION_NETWORK }));
}, 300_000);

describe('deploy/compose.yml', () => {
  test('Redis, the registry, the web front and a worker start from the service image, and a repository launches through them into a working Jupyter', async () => {
    await waitForHealthy(url, 'the composed service', 180_000, async () => {
      const { stdout } = await compose('logs', '--no-color', '--tail', '30');
      return `the containers' logs:\n${stdout}`;
    });
    const { stdout: services } = await compose('ps', '--services', '--filter', 'status=running');
    expect(services.trim().split('\n').sort()).toEqual(['bindery', 'redis', 'registry', 'worker']);

    // The front runs only the web and culler roles: the build can only be the worker's.
    const repo = await git.publish('demo', join(ROOT, 'test/fixtures/repos/default'));
    const { events } = await readEventStream(
      `${url}/build/git/${encodeURIComponent(repo.url)}/HEAD`,
    );
    const phases = events.map((event) => event.phase);
    expect(phases).toContain('building');
    const ready = events.at(-1)!;
    expect(ready).toMatchObject({ phase: 'ready', url: expect.stringMatching(`^${url}/user/`) });

    const status = await fetch(`${String(ready.url)}api/status`, {
      headers: { authorization: `token ${String(ready.token)}` },
    });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ kernels: 0 });
  }, 900_000);
});
