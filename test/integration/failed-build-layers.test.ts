import { afterAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { BuildError } from '../../src/errors.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { ImageLaunches } from '../../src/sessions/image-launches.js';
import { pruneImages } from '../../src/sessions/prune-images.js';

/**
 * A build that fails leaves the layers of its successful steps behind. A repository that fails
 * after a big step, with new content each time, would fill Docker's disk with them unless the
 * image budget sees them: the builder names the last layer a failed build committed under the
 * prefix (`…:failed-<ref>`), so the pruner counts it and removes it (and its unnamed parents)
 * like any image never launched; it is never taken for the built image.
 */
const exec = promisify(execFile);
const run = randomBytes(4).toString('hex');
const prefix = `bindery-test/layers${run}-`;
const namespace = `bindery-test-layers-${run}`;
const engine = new DockerEngine();
const redis = new Redis({ maxRetriesPerRequest: 1 });
const config = loadConfig({ BINDERY_IMAGE_PREFIX: prefix });
const builder = new Builder({ engine, config });
const BIG_MIB = 50;
let work: string;

/**
 * The repository at `dir` (one slug for all its versions), its Dockerfile writing BIG_MIB of
 * random bytes in one step, then failing (or not) in the next. `nonce` busts the cache.
 */
async function publish(dir: string, nonce: string, fail: boolean): Promise<void> {
  await writeFile(
    join(dir, 'Dockerfile'),
    'ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE}\n' +
      `RUN head -c ${BIG_MIB << 20} /dev/urandom > /tmp/big-${nonce}\n` +
      (fail ? 'RUN echo giving up; exit 3\n' : 'RUN echo fixed > /tmp/fixed\n'),
  );
}

/** Builds `dir`; its log and the ids of the layers Docker said it committed. */
async function build(dir: string) {
  let log = '';
  const error = await builder
    .build(parseSource(dir), { onEvent: (event) => (log += event.message) })
    .then(() => undefined)
    .catch((caught: unknown) => caught);
  const committed = [...log.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((match) => match[1]!);
  return { log, error, committed };
}

/** The image with `id`, or undefined when Docker has none. */
async function inspect(id: string) {
  return exec('docker', ['image', 'inspect', '--format', '{{json .}}', id]).then(
    ({ stdout }) => JSON.parse(stdout) as { Id: string; RepoTags: string[]; Size: number },
    () => undefined,
  );
}

const prune = (images: { maxCount?: number; budgetBytes?: number }) =>
  pruneImages({
    engine,
    launches: new ImageLaunches(redis, namespace),
    config: {
      imagePrefix: prefix,
      baseImage: config.baseImage,
      images: {
        maxCount: images.maxCount ?? 0,
        budgetBytes: images.budgetBytes ?? 0,
        diskHeadroomBytes: 0,
      },
    },
  });

afterAll(async () => {
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const name of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await exec('docker', ['image', 'rm', name]).catch(() => {});
  }
  const keys = await redis.keys(`${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

describe('layers of failed builds', () => {
  test('three failing builds after a big step leave nothing once the budget has run', async () => {
    work = await mkdtemp(join(tmpdir(), 'bindery-layers-'));
    const dir = join(work, `attack${run}`);
    await exec('mkdir', ['-p', dir]);
    const base = (await inspect(config.baseImage))!;
    const left: string[] = [];
    for (const attempt of [1, 2, 3]) {
      await publish(dir, `${run}-${attempt}`, true);
      const { error, committed, log } = await build(dir);
      expect(error).toBeInstanceOf(BuildError);
      expect(log).not.toMatch(/Using cache/);
      // The big step committed a layer; the failing one did not.
      expect(committed.length).toBeGreaterThanOrEqual(1);
      // The first id is the base image's (the FROM step); the rest are this build's.
      left.push(...committed.filter((id) => !base.Id.startsWith(`sha256:${id}`)));
    }
    const before = (await Promise.all(left.map(inspect))).filter((image) => image !== undefined);
    const bytes = before.reduce((sum, image) => sum + image.Size - base.Size, 0);
    console.log(
      `after 3 failed builds: ${before.length} images left of ${left.length} committed, ` +
        `${Math.round(bytes / 2 ** 20)} MiB beyond the base image; ` +
        `without a name: ${before.filter((image) => image.RepoTags.length === 0).length}`,
    );
    expect(before).toHaveLength(3);

    // A budget of one byte: everything unused under the prefix goes.
    const pruned = await prune({ budgetBytes: 1 });
    const after = (await Promise.all(left.map(inspect))).filter((image) => image !== undefined);
    console.log(`after the pruner: ${after.length} left, removed ${pruned.removed.join(', ')}`);
    expect(after.map((image) => image.Id)).toEqual([]);
  }, 600_000);

  test('a count budget keeps the newest failed build; a fixed retry reuses its big layer', async () => {
    const dir = join(work, `retry${run}`);
    await exec('mkdir', ['-p', dir]);
    for (const attempt of [1, 2]) {
      await publish(dir, `${run}-r${attempt}`, true);
      expect((await build(dir)).error).toBeInstanceOf(BuildError);
    }
    // Never launched: the older failed build goes first, the newer one stays within a count of one.
    const pruned = await prune({ maxCount: 1 });
    expect(pruned.removed).toHaveLength(1);
    expect(pruned.count).toBe(1);

    // The author fixes the failing step; the big step is not run again.
    await publish(dir, `${run}-r2`, false);
    const fixed = await build(dir);
    expect(fixed.error).toBeUndefined();
    expect(fixed.log).toMatch(/Using cache/);
    expect(fixed.log).not.toMatch(/head -c[^\n]*\n ---> Running in/);

    // The failed build's image is now the parent of a built one that a container uses: pruning
    // its name must not break that image (Docker keeps a parent; the pruner uses no force).
    const built = (await builder.resolve(parseSource(dir))).imageName;
    const { stdout } = await exec('docker', ['create', '--label', `${namespace}=1`, built, 'true']);
    try {
      const again = await prune({ budgetBytes: 1 });
      expect(again.removed).not.toContain(built);
      expect(await engine.imageExists(built)).toBe(true);
      const { stdout: files } = await exec('docker', [
        'run',
        '--rm',
        '--label',
        `${namespace}=1`,
        built,
        'ls',
        '/tmp',
      ]);
      expect(files).toMatch(/^fixed$/m);
      expect(files).toMatch(new RegExp(`^big-${run}-r2$`, 'm'));
    } finally {
      await exec('docker', ['rm', stdout.trim()]);
    }
  }, 600_000);

  test("a failed build's image is never taken for the built one", async () => {
    const dir = join(work, `never${run}`);
    await exec('mkdir', ['-p', dir]);
    await publish(dir, `${run}-n`, true);
    const first = await build(dir);
    expect(first.error).toBeInstanceOf(BuildError);
    const resolved = await builder.resolve(parseSource(dir));
    // What a launch, the status badge and the builder's cache check ask.
    expect(await engine.imageExists(resolved.imageName)).toBe(false);
    expect(await engine.inspectImage(resolved.imageName)).toBeUndefined();
    // The same commit again: built again (and failing again), not "Found built image".
    const second = await build(dir);
    expect(second.error).toBeInstanceOf(BuildError);
    expect(second.log).not.toMatch(/Found built image/);
  }, 600_000);
});
