import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { UnavailableError } from '../../src/errors.js';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { startService } from '../../src/service.js';
import { removeSession } from '../../src/sessions/cull-sessions.js';
import { ImageLaunches } from '../../src/sessions/image-launches.js';
import { ensureDiskRoom, pruneImages, type PruneDeps } from '../../src/sessions/prune-images.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { quietLog } from '../helpers/capture-log.js';

/**
 * Built images are garbage: a public instance builds every commit anyone names, and Docker's
 * disk fills. Past a count or byte budget the least recently launched unused images go; what
 * runs, what a launch is about to run, and the base image stay; a removed image is built again
 * by its next launch.
 */
const exec = promisify(execFile);
const run = randomBytes(4).toString('hex');
const BASE = 'bindery/base:bookworm';
const prefix = `bindery-test/budget${run}-`;
const namespace = `bindery-test-budget-${run}`;
const engine = new DockerEngine();
const redis = new Redis({ maxRetriesPerRequest: 1 });
const launches = new ImageLaunches(redis, namespace);
/** The base image, named under the prefix too: it must never go, whatever its name. */
const baseAlias = `${prefix}base:1`;
const containers: string[] = [];

const image = (n: number) => `${prefix}i${n}:1`;

/** A tiny image of its own: the base image and 1 MiB of random bytes no other image holds. */
async function buildImage(n: number): Promise<string> {
  const dockerfile = `FROM ${BASE}\nRUN head -c 1048576 /dev/urandom > /tmp/${run}-${n}\n`;
  const build = exec('docker', ['build', '-q', '-t', image(n), '-']);
  build.child.stdin?.end(dockerfile);
  await build;
  return image(n);
}

/** A container of `name`'s image, stopped: in use all the same. */
async function containerOf(name: string): Promise<string> {
  const { stdout } = await exec('docker', [
    'create',
    '--label',
    `bindery-test=${namespace}`,
    name,
    'true',
  ]);
  containers.push(stdout.trim());
  return stdout.trim();
}

/** A launch of `name`, over once its hold is released. */
async function launch(name: string) {
  const release = await launches.hold(name, 60_000);
  await release();
}

function deps(images: { maxCount?: number; budgetBytes?: number; headroom?: number }): PruneDeps {
  return {
    engine,
    launches,
    config: {
      imagePrefix: prefix,
      baseImage: baseAlias,
      images: {
        maxCount: images.maxCount ?? 0,
        budgetBytes: images.budgetBytes ?? 0,
        diskHeadroomBytes: images.headroom ?? 0,
      },
    },
  };
}

const exists = (name: string) => engine.imageExists(name);

/** Names of images under `prefix`, from the plain image list (cheap to poll). */
async function imagesUnder(prefix: string): Promise<string[]> {
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  return stdout.split('\n').filter((name) => name.startsWith(prefix));
}

beforeAll(async () => {
  await exec('docker', ['tag', BASE, baseAlias]);
  for (let n = 0; n < 4; n++) await buildImage(n);
}, 300_000);

afterAll(async () => {
  for (const id of containers) await engine.removeContainer(id);
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  // Untags the alias only: the base image keeps its own name.
  for (const name of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(name);
  }
  const keys = await redis.keys(`${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}, 120_000);

describe('the image pruner against Docker', () => {
  test('over a count budget, the least recently launched go; the one in use and the base image stay', async () => {
    // Launched in this order; i1 never, so it counts from its build, before every launch.
    for (const n of [2, 0, 3]) {
      await launch(image(n));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await containerOf(image(2));
    const result = await pruneImages(deps({ maxCount: 2 }));
    expect(result.removed).toEqual([image(1), image(0)]);
    expect(await exists(image(2))).toBe(true);
    expect(await exists(image(3))).toBe(true);
    expect(await exists(baseAlias)).toBe(true);
    expect(await exists(BASE)).toBe(true);
    expect(result.count).toBe(2);
  }, 60_000);

  test('over a byte budget, unused images go until it holds; each counts its own layers', async () => {
    const images = await engine.listImages(prefix);
    const own = images.find((entry) => entry.name === image(3))!;
    // 1 MiB of random bytes and a few of metadata: the base image's layers are not its own.
    expect(own.sizeBytes).toBeGreaterThanOrEqual(2 ** 20);
    expect(own.sizeBytes).toBeLessThan(2 * 2 ** 20);
    const result = await pruneImages(deps({ budgetBytes: 1 }));
    expect(result.removed).toEqual([image(3)]);
    expect(await exists(image(2))).toBe(true);
    expect(await exists(BASE)).toBe(true);
  }, 60_000);

  test('Docker itself refuses to remove an image a container uses', async () => {
    expect(await engine.removeUnusedImage(image(2))).toBe(false);
    expect(await exists(image(2))).toBe(true);
  }, 30_000);

  test('an image a launch holds (between its look and its container) stays', async () => {
    await buildImage(4);
    const release = await launches.hold(image(4), 60_000);
    expect((await pruneImages(deps({ budgetBytes: 1 }))).removed).toEqual([]);
    expect(await exists(image(4))).toBe(true);
    await release();
    expect((await pruneImages(deps({ budgetBytes: 1 }))).removed).toEqual([image(4)]);
  }, 120_000);

  test('a launch starting while its image is being removed waits, then finds it gone (and builds it)', async () => {
    await buildImage(5);
    expect(await launches.claim(image(5))).toBe(true);
    let held = false;
    const holding = launches.hold(image(5), 60_000).then((release) => {
      held = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(held).toBe(false);
    expect(await engine.removeUnusedImage(image(5))).toBe(true);
    await launches.release(image(5), true);
    const release = await holding;
    // What the launch sees next: no image, so it builds one, not "Found built image".
    expect(await exists(image(5))).toBe(false);
    // And while it holds, a claim fails: the rebuilt image is safe until its session runs.
    expect(await launches.claim(image(5))).toBe(false);
    await release();
  }, 120_000);

  test('short of disk before a build, unused images go first, then the build is refused with a sentence', async () => {
    await buildImage(6);
    const space = await engine.diskSpace();
    expect(space?.path).toMatch(/docker/);
    // More headroom than this disk will ever have.
    const refusal = ensureDiskRoom(deps({ headroom: space!.freeBytes + 2 ** 40 }));
    await expect(refusal).rejects.toThrow(UnavailableError);
    await expect(refusal).rejects.toThrow(/short of disk space .* free on .*docker.*did not start/);
    expect(await exists(image(6))).toBe(false);
    expect(await exists(image(2))).toBe(true);
    expect(await exists(BASE)).toBe(true);
  }, 120_000);
});

const phases = (events: StreamEvent[]) =>
  events.map((event) => event.phase).filter((phase, i, all) => phase !== all[i - 1]);

describe('the service keeps its images within the budget', () => {
  let git: GitServer;
  let service: TestService;
  let work: string;
  const repos: Record<string, { url: string; sha: string }> = {};

  async function publish(name: string, steps: string) {
    const dir = join(work, name);
    await exec('mkdir', ['-p', dir]);
    await writeFile(
      join(dir, 'Dockerfile'),
      `ARG BINDERY_BASE_IMAGE\nFROM \${BINDERY_BASE_IMAGE}\n${steps}\n`,
    );
    repos[name] = await git.publish(name, dir);
  }

  const buildUrl = (name: string, query = '') =>
    `${service.url}/build/git/${encodeURIComponent(repos[name]!.url)}/HEAD${query}`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'bindery-budget-'));
    git = await startGitServer();
    await publish('one', `RUN echo one-${run} > /tmp/one`);
    await publish('two', `RUN echo two-${run} > /tmp/two`);
    await publish('full', 'RUN dd if=/dev/zero of=/dev/full bs=1M count=1');
    await publish('three', `RUN echo three-${run} > /tmp/three`);
    service = await startTestService('budget', {
      BINDERY_IMAGE_MAX_COUNT: '1',
      BINDERY_IMAGE_BUDGET: '0',
      BINDERY_API_TOKENS: `token-${run}`,
    });
  }, 120_000);

  afterAll(async () => {
    await service?.remove();
    await git?.close();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  test('a launched image in use survives a budget of one; an unused one goes and its next launch builds it again', async () => {
    const first = await readEventStream(buildUrl('one'));
    expect(first.events.at(-1)).toMatchObject({ phase: 'ready' });
    const second = await readEventStream(buildUrl('two'));
    expect(second.events.at(-1)).toMatchObject({ phase: 'ready' });
    const one = first.events.at(-1)!.image as string;
    const two = second.events.at(-1)!.image as string;
    // Two images, a budget of one: both run, so both stay (the pruner ran after each build).
    expect(await exists(one)).toBe(true);
    expect(await exists(two)).toBe(true);

    // The session of `two` ends, as the culler ends it.
    const store = new SessionStore(redis, service.namespace);
    const routes = new RedisRouteTable(redis, { prefix: service.namespace });
    const name = /\/user\/([^/]+)\/$/.exec(second.events.at(-1)!.url as string)![1]!;
    await removeSession({ engine, store, routes }, (await store.get(name))!);

    const pruned = await pruneImages({
      engine,
      launches: new ImageLaunches(redis, service.namespace),
      config: service.config,
    });
    expect(pruned.removed).toEqual([two]);
    expect(await exists(one)).toBe(true);
    expect(await exists(BASE)).toBe(true);

    // Not "Found built image": the launch builds it again, then runs it.
    const again = await readEventStream(buildUrl('two'));
    expect(phases(again.events)).toEqual([
      'waiting',
      'fetching',
      'building',
      'built',
      'launching',
      'ready',
    ]);
    expect(await exists(two)).toBe(true);
  }, 600_000);

  test('a build step that fills the disk fails its build alone; the next build succeeds', async () => {
    const headers = { authorization: `Bearer token-${run}` };
    const [full, three] = await Promise.all([
      readEventStream(buildUrl('full', '?build_only=true'), { headers }),
      readEventStream(buildUrl('three', '?build_only=true'), { headers }),
    ]);
    const failed = full.events.at(-1)!;
    expect(failed).toMatchObject({ phase: 'failed' });
    expect(String(failed.message)).toMatch(/No space left on device/);
    expect(three.events.at(-1)).toMatchObject({ phase: 'ready' });
    const health = await fetch(`${service.url}/health`);
    expect(health.status).toBe(200);
  }, 600_000);

  test("the culler's loop removes what the sessions it ends leave unused", async () => {
    const culler = await startService({
      config: { ...service.config, idleTimeoutSeconds: 1 },
      namespace: service.namespace,
      host: '127.0.0.1',
      roles: ['culler'],
      cullIntervalMs: 500,
      log: quietLog,
    });
    try {
      const store = new SessionStore(redis, service.namespace);
      await waitFor(async () => (await store.all()).length === 0, 'the culler', 60_000);
      await waitFor(
        async () => (await imagesUnder(service.prefix)).length === 1,
        "the culler's pruner",
        60_000,
      );
      // `three` went right after its build (the others ran then); of `one` and `two`, `two`
      // was launched last.
      expect(await imagesUnder(service.prefix)).toEqual([expect.stringContaining('two')]);
    } finally {
      await culler.close();
    }
  }, 180_000);
});
