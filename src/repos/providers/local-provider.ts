import { resolve } from 'node:path';
import { RepositoryError } from '../../errors.js';
import type { RepoProvider } from '../repo-provider.js';
import { specName } from '../repo-provider.js';
import { canonicalSubjects, decodeFully } from '../spec-parts.js';

/**
 * A directory on this machine, for `bindery build <path>` only: built as its files are now, its
 * "commit" the hash of its contents. No launch URL names one.
 */
export const localProvider: RepoProvider<'local'> = {
  id: 'local',
  launchable: false,

  parseSpec(directory) {
    const path = resolve(directory);
    const name = path.split('/').filter(Boolean).at(-1) ?? 'root';
    return {
      provider: 'local',
      url: path,
      ref: 'local',
      buildSlug: `local-${name}`,
      repoLabel: `local/${path}`,
    };
  },

  async resolveRef(spec, { hashDirectory }) {
    if (!hashDirectory) {
      throw new Error('Resolving a local directory needs hashDirectory (the builder passes it).');
    }
    return hashDirectory(spec.url).catch((error: NodeJS.ErrnoException) => {
      if (error instanceof RepositoryError) throw error;
      throw new RepositoryError(
        `${spec.url} cannot be read as a directory (${error.code ?? error.message}).`,
      );
    });
  },

  repoUrl: (spec) => spec.url.replace(/\.git$/, ''),
  refUrl: (spec) => spec.url,
  specPath: (spec, ref) => `${specName(spec)}/${encodeURIComponent(ref)}`,
  banSubjects: (spec) => canonicalSubjects('local', decodeFully(specName(spec)), spec.ref, false),
};
