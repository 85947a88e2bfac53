import { statfs } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { BuiltImage, DiskSpace } from './container-engine.js';

type ImageSummary = {
  Id: string;
  RepoTags?: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
};
type DiskUsage = { Images?: ImageSummary[] };

/** How long to wait for another process's disk usage report before asking again. */
const DF_RETRY_MS = 250;
/** How long another process's report may take before this one gives up. */
const DF_WAIT_MS = 60_000;

/**
 * Docker's disk usage report. Docker computes one at a time and answers 500 "a disk usage
 * operation is already running" to the rest, so a pruner in another process (the culler, a
 * worker) makes this one wait its turn.
 */
async function diskUsage(docker: Docker): Promise<DiskUsage> {
  const deadline = Date.now() + DF_WAIT_MS;
  for (;;) {
    try {
      return (await docker.df()) as DiskUsage;
    } catch (error) {
      const busy = /already running/.test((error as Error).message);
      if (!busy || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, DF_RETRY_MS));
    }
  }
}

/**
 * Images named `<prefix>…` with how much of each other images share. Docker's image list says
 * so when asked (`shared-size`, API 1.42); older daemons answer -1 there, and then the disk
 * usage report, which also walks every container's layer, says it.
 */
export async function listImagesUnder(docker: Docker, prefix: string): Promise<BuiltImage[]> {
  let images = (await docker.listImages({
    'shared-size': true,
  } as Docker.ListImagesOptions)) as ImageSummary[];
  const ours = (image: ImageSummary) =>
    (image.RepoTags ?? []).some((name) => name.startsWith(prefix));
  if (images.some((image) => ours(image) && image.SharedSize < 0)) {
    images = (await diskUsage(docker)).Images ?? [];
  }
  return images.flatMap((image) =>
    (image.RepoTags ?? [])
      .filter((name) => name.startsWith(prefix))
      .map((name) => ({
        name,
        id: image.Id,
        createdAt: image.Created * 1000,
        sizeBytes: Math.max(0, image.Size - Math.max(0, image.SharedSize)),
      })),
  );
}

/** Ids of the images that containers (running or not) were created from. */
export async function imageIdsInUse(docker: Docker): Promise<Set<string>> {
  const containers = await docker.listContainers({ all: true });
  return new Set(containers.map((container) => container.ImageID));
}

/**
 * Removes one name of an image without force: Docker then refuses (409) while any container
 * uses the image, and the last check against a launch that just started is Docker's own.
 */
export async function removeImageUnlessUsed(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getImage(name).remove({ force: false, noprune: false });
    return true;
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    if (status === 404) return true;
    if (status === 409) return false;
    throw error;
  }
}

/**
 * Free bytes on Docker's data root, when it is on this machine's file system (a local socket
 * and a path this process can stat); undefined otherwise.
 */
export async function dataRootSpace(
  docker: Docker,
  local: boolean,
): Promise<DiskSpace | undefined> {
  if (!local) return undefined;
  const info = (await docker.info()) as { DockerRootDir?: string };
  if (!info.DockerRootDir) return undefined;
  try {
    const stats = await statfs(info.DockerRootDir);
    return { path: info.DockerRootDir, freeBytes: stats.bavail * stats.bsize };
  } catch {
    return undefined;
  }
}
