import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UnavailableError } from '../errors.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** A cgroup that a build's step containers run under, holding them to `pids.max` together. */
export interface BuildCgroup {
  /** What Docker's build API takes as `cgroupparent`. */
  parent: string;
  /** Removes the cgroup from every hierarchy once the build's containers are gone. */
  remove(): Promise<void>;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Makes a cgroup for one build with `pids.max = pidsLimit`. Docker's build API has no pids
 * option (https://github.com/moby/moby/issues/21052), but it takes a cgroup parent, and a
 * parent's pids.max holds every process below it. Works with the cgroupfs driver, cgroup v1 or
 * v2, on the Docker host, as root; otherwise a sentence says why builds cannot be limited.
 */
export async function createBuildCgroup(pidsLimit: number): Promise<BuildCgroup> {
  const name = `bindery-build-${randomBytes(6).toString('hex')}`;
  const v2 = await exists(join(CGROUP_ROOT, 'cgroup.controllers'));
  const pidsDir = v2 ? join(CGROUP_ROOT, name) : join(CGROUP_ROOT, 'pids', name);
  try {
    if (v2) {
      // Child cgroups get the pids controller only when the root hands it down.
      await writeFile(join(CGROUP_ROOT, 'cgroup.subtree_control'), '+pids');
    }
    await mkdir(pidsDir);
    await writeFile(join(pidsDir, 'pids.max'), String(pidsLimit));
  } catch (error) {
    await rmdir(pidsDir).catch(() => {});
    throw new UnavailableError(
      `Build steps cannot be held to ${pidsLimit} processes: creating a cgroup under ${CGROUP_ROOT} failed ` +
        `(${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Run Bindery's workers as root on the Docker host.`,
    );
  }
  return {
    parent: `/${name}`,
    async remove() {
      // Docker made the same folder in each v1 hierarchy for the step containers.
      const dirs = v2
        ? [pidsDir]
        : (await readdir(CGROUP_ROOT)).map((hierarchy) => join(CGROUP_ROOT, hierarchy, name));
      for (const dir of dirs) {
        // A step container's own cgroup may linger for a moment after Docker removed it.
        for (let attempt = 0; attempt < 20 && (await exists(dir)); attempt++) {
          try {
            await rmdir(dir);
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      }
    },
  };
}
