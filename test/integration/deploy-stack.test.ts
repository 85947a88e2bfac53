/**
 * deploy/stack.yml, deployed as its header says: `docker stack deploy` on a swarm of this
 * daemon (one node, labelled for the front, Redis and the registry), the service image built
 * by deploy/service-image/build.sh. A repository launches through the stack into Jupyter: the
 * global worker builds and pushes to the stack's registry, the front starts the session as a
 * Swarm service behind its sandbox, Redis is reached on its published port with its password.
 * Published in host mode: this machine's kernel has no IPVS, which Swarm's routing mesh needs
 * (dockerd: "Could not get ipvs family information from the kernel"), so the default ingress
 * mode publishes nothing here.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { SwarmEngine } from '../../src/engine/swarm-engine.js';
import { prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { quietLog } from '../helpers/capture-log.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { holdLoopbackSwarm } from '../helpers/swarm-lock.js';
import { waitFor, waitForHealthy } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const STACK_FILE = join(ROOT, 'deploy/stack.yml');
/** The service image deploy-compose.test.ts builds too: its layers below the command are shared. */
const IMAGE = 'bindery/service:test';
const LABELS = ['bindery.front=true', 'bindery.redis=true', 'bindery.registry=true'];

const run = randomBytes(3).toString('hex');
const stack = `bindery-stack-${run}`;
const prefix = `bindery-test/stack${run}-`;
const TOKEN = `token-${run}`;
const docker = async (...args: string[]) =>
  (await exec('docker', args, { maxBuffer: 64 * 2 ** 20 })).stdout.trim();
let env: Record<string, string> = {};
let url = '';
let git: GitServer;
let nodeId = '';
let releaseSwarm: (() => Promise<void>) | undefined;

/** The stack's services and their logs' last lines: what an operator reads when it fails. */
async function stackLogs(): Promise<string> {
  const names = (await docker('stack', 'services', stack, '--format', '{{.Name}}')).split('\n');
  const logs = await Promise.all(
    names.filter(Boolean).map(async (name) => {
      const { stdout, stderr } = await exec('docker', ['service', 'logs', '--tail', '20', name], {
        maxBuffer: 64 * 2 ** 20,
      }).catch((error: { stdout?: string; stderr?: string }) => error);
      return `${name}:\n${stdout ?? ''}${stderr ?? ''}`;
    }),
  );
  return `${await docker('stack', 'ps', stack, '--no-trunc')}\n${logs.join('\n')}`;
}

beforeAll(async () => {
  releaseSwarm = await holdLoopbackSwarm();
  nodeId = await docker('info', '--format', '{{.Swarm.NodeID}}');
  await docker('node', 'update', ...LABELS.flatMap((label) => ['--label-add', label]), nodeId);
  await exec(join(ROOT, 'deploy/service-image/build.sh'), [IMAGE], { maxBuffer: 64 * 2 ** 20 });
  git = await startGitServer();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = {
    BINDERY_IMAGE: IMAGE,
    PORT: String(port),
    BINDERY_PUBLIC_URL: url,
    REDIS_PASSWORD: randomBytes(12).toString('hex'),
    BINDERY_REDIS_PORT: String(await freePort()),
    BINDERY_REGISTRY_PORT: String(await freePort()),
    BINDERY_SESSION_NETWORK: `bindery-test-stack${run}`,
    BINDERY_IMAGE_PREFIX: prefix,
    BINDERY_API_TOKENS: TOKEN,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_PUBLISH_MODE: 'host',
  };
  await exec('docker', ['stack', 'deploy', '-c', STACK_FILE, stack], {
    env: { ...process.env, ...env },
    cwd: join(ROOT, 'deploy'),
  });
}, 900_000);

afterAll(async () => {
  const failures: unknown[] = [];
  const step = async (action: () => Promise<unknown>) => {
    await action().catch((error: unknown) => failures.push(error));
  };
  await step(() => docker('stack', 'rm', stack));
  // Its containers stop in the background after `stack rm`; volumes are free only after.
  await step(() =>
    waitFor(
      async () =>
        (await docker('ps', '-aq', '--filter', `label=com.docker.stack.namespace=${stack}`)) === '',
      'the stack to stop',
      120_000,
    ),
  );
  await step(() => docker('volume', 'rm', `${stack}_redis`, `${stack}_registry`));
  const config = loadConfig({
    BINDERY_ENGINE: 'swarm',
    BINDERY_SESSION_NETWORK: env.BINDERY_SESSION_NETWORK,
  });
  const engine = new SwarmEngine();
  await step(async () => {
    for (const session of await engine.listSessions()) {
      if (session.labels['bindery.repo']?.includes(git.url))
        await engine.removeContainer(session.id);
    }
  });
  await step(async () => {
    const images = await docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}');
    for (const image of images.split('\n').filter((name) => name.includes(prefix))) {
      await engine.removeImage(image);
    }
  });
  await step(async () => (await prepareSandbox({ engine, config, log: quietLog })).remove());
  await step(() =>
    docker(
      'node',
      'update',
      ...LABELS.flatMap((label) => ['--label-rm', label.split('=')[0]!]),
      nodeId,
    ),
  );
  await step(async () => git?.close());
  await step(async () => releaseSwarm?.());
  if (failures.length > 0) throw failures[0];
}, 300_000);

describe('deploy/stack.yml', () => {
  test('docker stack deploy starts Redis, the registry, the front and a worker per node, and a repository launches through them into a Swarm session', async () => {
    await waitForHealthy(url, 'the stack', 240_000, async () => `the stack:\n${await stackLogs()}`);
    const replicas = await docker(
      'stack',
      'services',
      stack,
      '--format',
      '{{.Name}} {{.Replicas}}',
    );
    expect(replicas.split('\n').sort()).toEqual(
      ['bindery', 'redis', 'registry', 'worker'].map((name) => `${stack}_${name} 1/1`),
    );

    const repo = await git.publish('demo', join(ROOT, 'test/fixtures/repos/default'));
    const { events } = await readEventStream(
      `${url}/build/git/${encodeURIComponent(repo.url)}/HEAD`,
    );
    const phases = events.map((event) => event.phase);
    const ready = events.at(-1)!;
    if (ready.phase !== 'ready') {
      throw new Error(
        `launch ended with ${JSON.stringify(ready)}; the stack:\n${await stackLogs()}`,
      );
    }
    // The worker built it and pushed it to the stack's registry.
    expect(phases).toEqual(expect.arrayContaining(['building', 'pushing', 'ready']));
    const catalog = await fetch(`http://127.0.0.1:${env.BINDERY_REGISTRY_PORT}/v2/_catalog`);
    expect(((await catalog.json()) as { repositories: string[] }).repositories).toEqual([
      expect.stringMatching(new RegExp(`^${prefix}`)),
    ]);
    // The session is a Swarm service, reached through the front's proxy.
    const name = /\/user\/([^/]+)\//.exec(String(ready.url))![1]!;
    expect(
      await docker('service', 'inspect', name, '--format', '{{index .Spec.Labels "bindery.kind"}}'),
    ).toBe('session');
    const status = await fetch(`${String(ready.url)}api/status`, {
      headers: { authorization: `token ${String(ready.token)}` },
    });
    expect(status.status).toBe(200);
    expect((await fetch(`${String(ready.url)}api/status`)).status).toBe(403);

    // Redis answers on its published port only with the stack's password.
    const redisCli = (...args: string[]) =>
      exec('redis-cli', ['-p', env.BINDERY_REDIS_PORT!, ...args]).then(({ stdout }) =>
        stdout.trim(),
      );
    expect(await redisCli('ping')).toMatch(/NOAUTH/);
    expect(await redisCli('-a', env.REDIS_PASSWORD!, '--no-auth-warning', 'ping')).toBe('PONG');
  }, 900_000);
});
