import type Docker from 'dockerode';

/** Docker's line after each step of the classic builder: ` ---> <short image id>`. */
const COMMITTED = /^ ---> ([0-9a-f]{12,64})\s*$/;
/** Most names one failed build gets (one per stage it left unfinished is the usual case). */
const MAX_NAMES = 8;
/** Docker's clock and ours, and the second Docker's build log lags behind its commit. */
const CLOCK_SLACK_MS = 2_000;

/** The image id a build log line says was committed (or reused), if it is such a line. */
export function committedImageId(line: string): string | undefined {
  return COMMITTED.exec(line)?.[1];
}

type Facts = { id: string; parent: string; created: number; named: boolean };

/**
 * Names what a failed build left behind, so that the image budget sees it: a failed build's
 * committed steps are images with no name (labels given to Docker's build API reach only the
 * final image), which no pruner under the prefix would ever count. Of the images the log says
 * were committed, those created since `startedAt` and still without a name are this build's
 * own (a line a step printed itself names an older image, or one that is not there; the log
 * does not tell Docker's lines from the step's). Each of them that is no other's parent (the
 * last step of each stage) gets a name, `failedName` then `failedName-2`…; removing that name
 * later removes the image and its unnamed parents, and Docker keeps any a container or
 * another image still uses. An image the name leaves (an earlier failure of the same commit)
 * is removed unless something still holds it. Returns the names given.
 */
export async function nameFailedBuildLayers(
  docker: Docker,
  ids: Iterable<string>,
  startedAt: number,
  failedName: string,
): Promise<string[]> {
  const facts: Facts[] = [];
  for (const id of new Set(ids)) {
    try {
      const info = (await docker.getImage(id).inspect()) as {
        Id: string;
        Parent?: string;
        Created: string;
        RepoTags?: string[] | null;
      };
      facts.push({
        id: info.Id,
        parent: info.Parent ?? '',
        created: Date.parse(info.Created),
        named: (info.RepoTags ?? []).length > 0,
      });
    } catch {
      // Not there (a line the step printed, or gone since): nothing of ours to name.
    }
  }
  const fresh = facts.filter((f) => !f.named && f.created >= startedAt - CLOCK_SLACK_MS);
  const parents = new Set(fresh.map((f) => f.parent));
  const leaves = fresh
    .filter((f) => !parents.has(f.id))
    .sort((a, b) => b.created - a.created)
    .slice(0, MAX_NAMES);
  const colon = failedName.lastIndexOf(':');
  const repo = failedName.slice(0, colon);
  const tag = failedName.slice(colon + 1);
  const names: string[] = [];
  for (const [index, leaf] of leaves.entries()) {
    const suffix = index === 0 ? '' : `-${index + 1}`;
    const name = { repo, tag: `${tag.slice(0, 128 - suffix.length)}${suffix}` };
    const fullName = `${name.repo}:${name.tag}`;
    const previous = await docker
      .getImage(fullName)
      .inspect()
      .catch(() => undefined);
    await docker.getImage(leaf.id).tag(name);
    names.push(fullName);
    // The same commit failed before with other layers (its cache gone or bypassed): those lost
    // their name here, and unnamed nothing would count them. Without force, Docker keeps them
    // while another name, an image built on them, or a container holds them.
    if (previous && previous.Id !== leaf.id) {
      await docker
        .getImage(previous.Id)
        .remove({ force: false, noprune: false })
        .catch(() => {});
    }
  }
  return names;
}
