import { describe, expect, test } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import type { BuiltImage } from '../../src/engine/container-engine.js';
import { UnavailableError } from '../../src/errors.js';
import { ensureDiskRoom, pruneImages, type PruneDeps } from '../../src/sessions/prune-images.js';

const MiB = 2 ** 20;
const PREFIX = 'bindery/r2d-';
const BASE = 'bindery/base:bookworm';

interface World {
  images: BuiltImage[];
  inUse?: string[];
  held?: string[];
  launched?: Record<string, number>;
  /** Names a launch claims between the pruner's look and its claim. */
  claimedByLaunch?: string[];
  /** Names Docker refuses to remove (a container appeared). */
  refused?: string[];
  freeBytes?: number;
}

const image = (name: string, createdAt: number, sizeBytes = MiB, id = `sha256:${name}`) => ({
  name: `${PREFIX}${name}:1`,
  id,
  createdAt,
  sizeBytes,
});

/** The pruner's world in memory; `removed` lists what it removed, in order. */
function fake(
  world: World,
  images: { maxCount?: number; budgetBytes?: number; headroom?: number },
) {
  const removed: string[] = [];
  const forgotten: string[] = [];
  let free = world.freeBytes;
  const deps: PruneDeps = {
    engine: {
      listImages: async (prefix) =>
        world.images.filter((i) => i.name.startsWith(prefix) && !removed.includes(i.name)),
      imagesInUse: async () => new Set(world.inUse ?? []),
      inspectImage: async (name) =>
        name === BASE ? { id: 'sha256:base', labels: {}, fromRegistry: false } : undefined,
      removeUnusedImage: async (name) => {
        if (world.refused?.includes(name)) return false;
        removed.push(name);
        if (free !== undefined) free += world.images.find((i) => i.name === name)!.sizeBytes;
        return true;
      },
      diskSpace: async () =>
        free === undefined ? undefined : { path: '/var/lib/docker', freeBytes: free },
    },
    launches: {
      lastLaunches: async () => new Map(Object.entries(world.launched ?? {})),
      held: async () => new Set(world.held ?? []),
      claim: async (name) => !world.claimedByLaunch?.includes(name),
      release: async () => {},
      forget: async (names) => void forgotten.push(...names),
    },
    config: {
      imagePrefix: PREFIX,
      baseImage: BASE,
      images: {
        maxCount: images.maxCount ?? 0,
        budgetBytes: images.budgetBytes ?? 0,
        diskHeadroomBytes: images.headroom ?? 0,
      },
    },
  };
  return { deps, removed, forgotten };
}

const name = (short: string) => `${PREFIX}${short}:1`;

describe('pruneImages: who goes when built images are over the budget', () => {
  test("a failed build's layers go before any built image, however recent", async () => {
    const failed = { ...image('f', 5000), name: `${PREFIX}f:failed-1` };
    const { deps, removed } = fake(
      { images: [image('a', 1000), failed, image('b', 2000)] },
      {
        maxCount: 2,
      },
    );
    await pruneImages(deps);
    expect(removed).toEqual([failed.name]);
  });

  test('the least recently launched go first; one never launched counts from its build', async () => {
    const { deps, removed } = fake(
      {
        images: [image('a', 1000), image('b', 2000), image('c', 3000), image('d', 4000)],
        // a was launched late; c never; b and d early.
        launched: { [name('a')]: 9000, [name('b')]: 2500, [name('d')]: 4100 },
      },
      { maxCount: 2 },
    );
    const result = await pruneImages(deps);
    // Recency: b 2500, c 3000, d 4100, a 9000.
    expect(removed).toEqual([name('b'), name('c')]);
    expect(result).toMatchObject({ removed, count: 2 });
  });

  test('an image a container uses, a launch holds, or that is the base image stays', async () => {
    const { deps, removed } = fake(
      {
        images: [
          image('used', 1000),
          image('held', 1100),
          // The base image tagged under the prefix too: the same id.
          image('base-alias', 1200, MiB, 'sha256:base'),
          image('old', 1300),
          image('new', 5000),
        ],
        inUse: ['sha256:used'],
        held: [name('held')],
      },
      { maxCount: 1 },
    );
    const result = await pruneImages(deps);
    expect(removed).toEqual([name('old'), name('new')]);
    // Over the count still: what is in use cannot go (the base image is not counted at all).
    expect(result.count).toBe(2);
  });

  test('a launch that claims an image after the look, or a container Docker sees, keeps it', async () => {
    const { deps, removed } = fake(
      {
        images: [image('a', 1000), image('b', 2000), image('c', 3000), image('d', 4000)],
        claimedByLaunch: [name('a')],
        refused: [name('b')],
      },
      { maxCount: 2 },
    );
    await pruneImages(deps);
    expect(removed).toEqual([name('c'), name('d')]);
  });

  test('a byte budget counts each image once, whatever its names', async () => {
    const { deps, removed } = fake(
      {
        images: [
          image('a', 1000, 300 * MiB),
          // Two names of one image (two commits with identical content).
          image('b1', 2000, 300 * MiB, 'sha256:b'),
          image('b2', 2100, 300 * MiB, 'sha256:b'),
          image('c', 3000, 300 * MiB),
        ],
      },
      { budgetBytes: 500 * MiB },
    );
    const result = await pruneImages(deps);
    // 900 MiB held: a goes (600), then both names of b (the first frees nothing), leaving 300.
    expect(removed).toEqual([name('a'), name('b1'), name('b2')]);
    expect(result.bytes).toBe(300 * MiB);
  });

  test('launches of images that are gone are forgotten, unless a launch holds them', async () => {
    const { deps, forgotten } = fake(
      {
        images: [image('a', 1000)],
        launched: { [name('a')]: 2000, [name('gone')]: 1500, [name('building')]: 2500 },
        held: [name('building')],
      },
      {},
    );
    await pruneImages(deps);
    expect(forgotten).toEqual([name('gone')]);
  });

  test('within the budget nothing goes; 0 is no cap', async () => {
    const images = [image('a', 1000, 900 * MiB), image('b', 2000, 900 * MiB)];
    expect((await pruneImages(fake({ images }, { maxCount: 2 }).deps)).removed).toEqual([]);
    expect((await pruneImages(fake({ images }, {}).deps)).removed).toEqual([]);
  });
});

describe('ensureDiskRoom: a build starts only with room on Docker disk', () => {
  const images = [image('a', 1000, 300 * MiB), image('b', 2000, 300 * MiB)];

  test('with room, or no view of the disk, nothing is removed', async () => {
    const roomy = fake({ images, freeBytes: 2000 * MiB }, { headroom: 1000 * MiB });
    expect(await ensureDiskRoom(roomy.deps)).toBeUndefined();
    const remote = fake({ images }, { headroom: 1000 * MiB });
    expect(await ensureDiskRoom(remote.deps)).toBeUndefined();
    expect([...roomy.removed, ...remote.removed]).toEqual([]);
  });

  test('short of room, the least recently launched go until there is room', async () => {
    const { deps, removed } = fake({ images, freeBytes: 800 * MiB }, { headroom: 1000 * MiB });
    await ensureDiskRoom(deps);
    expect(removed).toEqual([name('a')]);
  });

  test('when removing is not enough, the build is refused with a sentence', async () => {
    const { deps, removed } = fake(
      { images, inUse: ['sha256:b'], freeBytes: 100 * MiB },
      { headroom: 1000 * MiB },
    );
    const refusal = ensureDiskRoom(deps);
    await expect(refusal).rejects.toThrow(UnavailableError);
    await expect(refusal).rejects.toThrow(
      /short of disk space \(400 MiB free on \/var\/lib\/docker, it keeps 1000 MiB free for builds: BINDERY_DISK_HEADROOM\).*did not start/,
    );
    expect(removed).toEqual([name('a')]);
  });
});

describe('the budget settings', () => {
  test('sizes as people write them, 0 for no cap, and defaults for a public instance', () => {
    expect(
      loadConfig({
        BINDERY_IMAGE_BUDGET: '50GiB',
        BINDERY_IMAGE_MAX_COUNT: '20',
        BINDERY_DISK_HEADROOM: '500MB',
      }).images,
    ).toEqual({ budgetBytes: 50 * 2 ** 30, maxCount: 20, diskHeadroomBytes: 500 * MiB });
    expect(loadConfig({ BINDERY_IMAGE_BUDGET: '2t', BINDERY_DISK_HEADROOM: '0' }).images).toEqual({
      budgetBytes: 2 * 2 ** 40,
      maxCount: 500,
      diskHeadroomBytes: 0,
    });
    expect(loadConfig({}).images).toEqual({
      budgetBytes: 50 * 2 ** 30,
      maxCount: 500,
      diskHeadroomBytes: 10 * 2 ** 30,
    });
  });

  test('a value that is no size or count names its variable', () => {
    expect(() => loadConfig({ BINDERY_IMAGE_BUDGET: 'lots' })).toThrow(
      /BINDERY_IMAGE_BUDGET: "lots" is not a size/,
    );
    expect(() => loadConfig({ BINDERY_IMAGE_MAX_COUNT: '-1' })).toThrow(/BINDERY_IMAGE_MAX_COUNT/);
    expect(() => loadConfig({ BINDERY_DISK_HEADROOM: '10 apples' })).toThrow(
      /BINDERY_DISK_HEADROOM/,
    );
  });
});
