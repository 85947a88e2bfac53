import type { Config } from '../config.js';
import type { BuiltImage, ContainerEngine } from '../engine/container-engine.js';
import { UnavailableError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import type { ImageLaunches } from './image-launches.js';

export interface PruneDeps {
  engine: Pick<
    ContainerEngine,
    'listImages' | 'imagesInUse' | 'inspectImage' | 'removeUnusedImage' | 'diskSpace'
  >;
  launches: Pick<ImageLaunches, 'lastLaunches' | 'held' | 'claim' | 'release' | 'forget'>;
  config: Pick<Config, 'imagePrefix' | 'baseImage' | 'images'>;
}

export interface PruneResult {
  /** Names removed, in the order they went. */
  removed: string[];
  /** Images (and bytes of them) left under the prefix. */
  count: number;
  bytes: number;
}

/** The tag a failed build's layers are kept under (src/build/image-name.ts). */
const FAILED_TAG = /:failed-[^:/]*$/;

/** Bytes of a set of names: an image id with several names counts once. */
function bytesOf(images: BuiltImage[]): number {
  const byId = new Map(images.map((image) => [image.id, image.sizeBytes]));
  return [...byId.values()].reduce((sum, bytes) => sum + bytes, 0);
}

/**
 * Removes built images (named under BINDERY_IMAGE_PREFIX) while they are more than
 * BINDERY_IMAGE_MAX_COUNT or BINDERY_IMAGE_BUDGET bytes, or until `freeBytes` more are freed:
 * a failed build's layers first, then the least recently launched, an image never launched
 * counting from when it was built.
 * Never removed: an image any container uses (running or not), one a launch holds (it is about
 * to start), the base image. A removed image is built again by its next launch.
 */
export async function pruneImages(
  deps: PruneDeps,
  { freeBytes = 0 }: { freeBytes?: number } = {},
): Promise<PruneResult> {
  const { engine, launches, config } = deps;
  const base = await engine.inspectImage(config.baseImage);
  const images = (await engine.listImages(config.imagePrefix)).filter(
    (image) => image.name !== config.baseImage && image.id !== base?.id,
  );
  const inUse = await engine.imagesInUse();
  const held = await launches.held();
  const launched = await launches.lastLaunches();
  // Launches of images no longer there (removed by hand) would otherwise stay in Redis for good.
  const names = new Set(images.map((image) => image.name));
  await launches.forget([...launched.keys()].filter((name) => !names.has(name) && !held.has(name)));
  const recency = (image: BuiltImage) => Math.max(launched.get(image.name) ?? 0, image.createdAt);
  // A failed build's layers (`…:failed-<ref>`, failedImageNameFor) serve as cache only, never a
  // launch: they go before any built image, so a run of failing commits evicts its own.
  const built = (image: BuiltImage) => (FAILED_TAG.test(image.name) ? 0 : 1);
  const candidates = images
    .filter((image) => !inUse.has(image.id) && !held.has(image.name))
    .sort((a, b) => built(a) - built(b) || recency(a) - recency(b));

  let left = images;
  let freed = 0;
  const over = () =>
    (config.images.maxCount > 0 && left.length > config.images.maxCount) ||
    (config.images.budgetBytes > 0 && bytesOf(left) > config.images.budgetBytes) ||
    freed < freeBytes;
  const removed: string[] = [];
  for (const image of candidates) {
    if (!over()) break;
    // A launch may have started on it since the lists above were read: the claim says.
    if (!(await launches.claim(image.name))) continue;
    let gone = false;
    try {
      gone = await engine.removeUnusedImage(image.name);
    } finally {
      await launches.release(image.name, gone);
    }
    if (!gone) continue;
    const before = bytesOf(left);
    left = left.filter((other) => other.name !== image.name);
    freed += before - bytesOf(left);
    removed.push(image.name);
  }
  return { removed, count: left.length, bytes: bytesOf(left) };
}

/**
 * Makes sure Docker's disk has BINDERY_DISK_HEADROOM free before a build starts, pruning
 * images beyond the budget's if it has not; refuses the build with a sentence when even that
 * is not enough. Nothing is checked when the engine's disk cannot be seen from here.
 */
export async function ensureDiskRoom(deps: PruneDeps): Promise<PruneResult | undefined> {
  const headroom = deps.config.images.diskHeadroomBytes;
  if (headroom <= 0) return undefined;
  const space = await deps.engine.diskSpace();
  if (!space || space.freeBytes >= headroom) return undefined;
  const result = await pruneImages(deps, { freeBytes: headroom - space.freeBytes });
  const after = (await deps.engine.diskSpace()) ?? space;
  if (after.freeBytes < headroom) {
    throw new UnavailableError(
      `This service is short of disk space (${formatBytes(after.freeBytes)} free on ${after.path}, ` +
        `it keeps ${formatBytes(headroom)} free for builds: BINDERY_DISK_HEADROOM), and removing ` +
        'unused built images did not free enough; the build did not start. Try again later.',
    );
  }
  return result;
}
