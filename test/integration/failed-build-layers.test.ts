import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Builder } from '../../src/build/builder.js';
import { failedImageNameFor } from '../../src/build/image-name.js';
import { loadConfig } from '../../src/config.js';
import Docker from 'dockerode';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { nameFailedBuildLayers } from '../../src/engine/failed-build-layers.js';
import { BuildError } from '../../src/errors.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { ImageLaunches } from '../../src/sessions/image-launches.js';
import { pruneImages } from '../../src/sessions/prune-images.js';
import { readEventStream } from '../helpers/event-stream.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';

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
function dockerfileFor(nonce: string, fail: boolean): string {
  return (
    'ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE}\n' +
    `RUN head -c ${BIG_MIB << 20} /dev/urandom > /tmp/big-${nonce}\n` +
    (fail ? 'RUN echo giving up; exit 3\n' : 'RUN echo fixed > /tmp/fixed\n')
  );
}

/** Writes `dockerfileFor(nonce, fail)` into the repository at `dir`. */
async function publish(dir: string, nonce: string, fail: boolean): Promise<void> {
  await writeFile(join(dir, 'Dockerfile'), dockerfileFor(nonce, fail));
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

  test('lines a step prints itself do not move the name off its big layer', async () => {
    const dir = join(work, `forged${run}`);
    await exec('mkdir', ['-p', dir]);
    const base = (await inspect(config.baseImage))!;
    const shortBase = base.Id.replace('sha256:', '').slice(0, 12);
    await writeFile(
      join(dir, 'Dockerfile'),
      'ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE}\n' +
        `RUN head -c ${BIG_MIB << 20} /dev/urandom > /tmp/big-${run}-f\n` +
        // Docker's own lines, forged: the base image, an id that is not there.
        `RUN printf ' ---> %s\\n ---> 0123456789ab\\n' ${shortBase}; exit 3\n`,
    );
    const { error, log } = await build(dir);
    expect(error).toBeInstanceOf(BuildError);
    expect(log).toContain(` ---> ${shortBase}\n ---> 0123456789ab`);
    const failed = failedImageNameFor((await builder.resolve(parseSource(dir))).imageName);
    const { stdout } = await exec('docker', ['run', '--rm', failed, 'ls', '/tmp']);
    expect(stdout).toMatch(new RegExp(`^big-${run}-f$`, 'm'));
    // The base image got no name of the build's.
    expect((await inspect(base.Id))!.RepoTags).not.toContain(failed);
  }, 600_000);

  test('a multi-stage build failing in its second stage names what each stage left', async () => {
    const dir = join(work, `stages${run}`);
    await exec('mkdir', ['-p', dir]);
    await writeFile(
      join(dir, 'Dockerfile'),
      'ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE} AS first\n' +
        `RUN head -c ${BIG_MIB << 20} /dev/urandom > /tmp/one-${run}\n` +
        'FROM ${BINDERY_BASE_IMAGE}\n' +
        `RUN head -c ${BIG_MIB << 20} /dev/urandom > /tmp/two-${run}\n` +
        'RUN exit 3\n',
    );
    const { error, committed } = await build(dir);
    expect(error).toBeInstanceOf(BuildError);
    const failed = failedImageNameFor((await builder.resolve(parseSource(dir))).imageName);
    const named = await Promise.all([failed, `${failed}-2`].map(inspect));
    expect(named.every((image) => image !== undefined)).toBe(true);
    const pruned = await prune({ budgetBytes: 1 });
    expect(pruned.removed).toEqual(expect.arrayContaining([failed, `${failed}-2`]));
    const base = (await inspect(config.baseImage))!;
    const ours = committed.filter((id) => !base.Id.startsWith(`sha256:${id}`));
    expect((await Promise.all(ours.map(inspect))).filter(Boolean)).toEqual([]);
  }, 600_000);

  test("a build reusing a failed build's layer is not broken by the pruner removing its name", async () => {
    const dir = join(work, `reuse${run}`);
    await exec('mkdir', ['-p', dir]);
    await publish(dir, `${run}-u`, true);
    expect((await build(dir)).error).toBeInstanceOf(BuildError);
    const failed = failedImageNameFor((await builder.resolve(parseSource(dir))).imageName);
    // The fixed version reuses the big layer and runs a slow step on it; the pruner runs then.
    await writeFile(
      join(dir, 'Dockerfile'),
      'ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE}\n' +
        `RUN head -c ${BIG_MIB << 20} /dev/urandom > /tmp/big-${run}-u\n` +
        'RUN sleep 4 && echo fixed > /tmp/fixed\n',
    );
    let log = '';
    const fixed = builder.build(parseSource(dir), { onEvent: (event) => (log += event.message) });
    for (let i = 0; i < 600 && !/sleep 4[^]* ---> Running in/.test(log); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(log).toMatch(/Using cache/);
    const pruned = await prune({ budgetBytes: 1 });
    const result = await fixed;
    expect(failed).toMatch(/:failed-/);
    expect(result.cached).toBe(false);
    expect(await engine.imageExists(result.imageName)).toBe(true);
    // Docker refuses to remove the failed build's image while the step's container uses it, and
    // only untags it once the new image is its child: the new image stays whole either way.
    expect(pruned.removed).not.toContain(result.imageName);
    expect(failed).toMatch(/:failed-/);
  }, 600_000);
});

describe('naming the layers of a failed build', () => {
  /** An image with no name, of `bytes` random bytes on the base image (`n` tells them apart). */
  async function unnamedImage(bytes: number, n: number): Promise<string> {
    const build = exec('docker', ['build', '-q', '-']);
    build.child.stdin?.end(
      `FROM ${config.baseImage}\nRUN head -c ${bytes} /dev/urandom > /tmp/${run}-${n}\n`,
    );
    return (await build).stdout.trim();
  }

  test('the same commit failing again with other layers: the earlier ones go', async () => {
    const docker = new Docker();
    const name = `${prefix}again:failed-${'c'.repeat(40)}`;
    const started = Date.now();
    const first = await unnamedImage(1 << 20, 1);
    expect(await nameFailedBuildLayers(docker, [first.slice(7, 19)], started, name)).toEqual([
      name,
    ]);
    const second = await unnamedImage(1 << 20, 2);
    expect(await nameFailedBuildLayers(docker, [second.slice(7, 19)], started, name)).toEqual([
      name,
    ]);
    expect((await inspect(name))!.Id).toBe(second);
    expect(await inspect(first)).toBeUndefined();
  }, 120_000);
});

describe('the service prunes after a failed build', () => {
  let git: GitServer;
  let service: TestService;
  let repoDir: string;

  beforeAll(async () => {
    repoDir = await mkdtemp(join(tmpdir(), 'bindery-layers-service-'));
    git = await startGitServer();
    service = await startTestService('layers', {
      BINDERY_IMAGE_MAX_COUNT: '1',
      BINDERY_IMAGE_BUDGET: '0',
      BINDERY_API_TOKENS: `token-${run}`,
    });
  }, 120_000);

  afterAll(async () => {
    await service?.remove();
    await git?.close();
    await rm(repoDir, { recursive: true, force: true });
  }, 120_000);

  test('three failing commits after a big step leave one failed image (a count budget of one)', async () => {
    const headers = { authorization: `Bearer token-${run}` };
    let url = '';
    for (const attempt of [1, 2, 3]) {
      const dockerfile = dockerfileFor(`${run}-s${attempt}`, true);
      if (attempt === 1) {
        await writeFile(join(repoDir, 'Dockerfile'), dockerfile);
        url = (await git.publish('attack', repoDir)).url;
      } else {
        await git.commit('attack', { Dockerfile: dockerfile });
      }
      const build = await readEventStream(
        `${service.url}/build/git/${encodeURIComponent(url)}/HEAD?build_only=true`,
        { headers },
      );
      expect(build.events.at(-1)).toMatchObject({ phase: 'failed' });
    }
    const names = async () => {
      const { stdout } = await exec('docker', [
        'image',
        'ls',
        '--format',
        '{{.Repository}}:{{.Tag}}',
      ]);
      return stdout.split('\n').filter((name) => name.startsWith(service.prefix));
    };
    // The worker's pruner runs after each build, not awaited by it.
    await waitFor(async () => (await names()).length === 1, 'one image left', 60_000);
    expect(await names()).toEqual([expect.stringMatching(/:failed-[0-9a-f]{40}$/)]);
  }, 600_000);
});
