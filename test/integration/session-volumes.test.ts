import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { removeSession } from '../../src/sessions/cull-sessions.js';
import { SessionStore } from '../../src/sessions/session-store.js';

/**
 * A repository's Dockerfile may declare `VOLUME`: each container of its image then gets an
 * anonymous volume, which outlives the container unless its removal asks for it too. A public
 * instance starts thousands of sessions; each left volume is disk nobody reclaims.
 */
const exec = promisify(execFile);
const run = randomBytes(4).toString('hex');
const namespace = `bindery-test-volumes-${run}`;
const image = `bindery-test/volumes-${run}:1`;
const redis = new Redis({ maxRetriesPerRequest: 1 });
const engine = new DockerEngine();
const store = new SessionStore(redis, namespace);
const routes = new RedisRouteTable(redis, { prefix: namespace, cacheTtlMs: 0 });

/** The volumes attached to a container, by name. */
async function volumesOf(container: string): Promise<string[]> {
  const { stdout } = await exec('docker', [
    'container',
    'inspect',
    '--format',
    '{{range .Mounts}}{{.Name}} {{end}}',
    container,
  ]);
  return stdout.split(' ').filter((name) => name.trim());
}

async function volumeExists(name: string): Promise<boolean> {
  return exec('docker', ['volume', 'inspect', name]).then(
    () => true,
    () => false,
  );
}

beforeAll(async () => {
  const dockerfile = 'FROM bindery/base:bookworm\nVOLUME /home/jovyan/data\n';
  const build = exec('docker', ['build', '-q', '-t', image, '-']);
  build.child.stdin?.end(dockerfile);
  await build;
}, 120_000);

afterAll(async () => {
  await engine.removeImage(image);
  const keys = await redis.keys(`${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}, 60_000);

describe('session containers and their anonymous volumes', () => {
  test('a culled session of an image declaring VOLUME leaves no volume behind', async () => {
    const name = `bindery-volumes-${run}`;
    const container = await engine.runSession({
      name,
      image,
      cmd: ['sleep', '600'],
      env: {},
      labels: { 'bindery.kind': 'session', 'bindery.session': name, 'bindery.store': namespace },
      limits: { cpus: 0.5, memoryBytes: 256 * 2 ** 20 },
    });
    const volumes = await volumesOf(container.id);
    expect(volumes).toHaveLength(1);
    await store.save({
      name,
      containerId: container.id,
      image,
      repo: 'local/volumes',
      target: container.url,
      token: 'x',
      createdAt: Date.now(),
    });
    // What the culler and reconcile do with a session they end.
    await removeSession({ engine, store, routes }, (await store.get(name))!);
    for (const volume of volumes) expect(await volumeExists(volume)).toBe(false);
  }, 60_000);

  test('a command run to completion leaves no volume behind', async () => {
    const before = new Set(
      (await exec('docker', ['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean),
    );
    const result = await engine.runToCompletion({
      image,
      cmd: ['true'],
      limits: { cpus: 0.5, memoryBytes: 256 * 2 ** 20 },
      networkDisabled: true,
      timeoutMs: 30_000,
    });
    expect(result.exitCode).toBe(0);
    const after = (await exec('docker', ['volume', 'ls', '-q'])).stdout.split('\n');
    // Other test files may make volumes meanwhile; ours would be attached to nothing.
    const left = [];
    for (const volume of after.filter((name) => name && !before.has(name))) {
      const { stdout } = await exec('docker', ['ps', '-aq', '--filter', `volume=${volume}`]);
      if (!stdout.trim()) left.push(volume);
    }
    expect(left).toEqual([]);
  }, 60_000);
});
