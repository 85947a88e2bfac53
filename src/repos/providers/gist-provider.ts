import { InvalidInputError } from '../../errors.js';
import type { RepoProvider } from '../repo-provider.js';
import { specName } from '../repo-provider.js';
import {
  canonicalSubjects,
  decodeFully,
  decodePart,
  splitSpec,
  validateRef,
} from '../spec-parts.js';
import { resolveOverGit } from './git-provider.js';

/** `gist/<user>/<gist id>[/<ref>]`: a GitHub gist, its default branch unless a ref is given. */
export const gistProvider: RepoProvider<'gist'> = {
  id: 'gist',
  launchable: true,

  parseSpec(spec) {
    const [user, id, ref = 'HEAD'] = splitSpec(spec, 2);
    if (!user || !id || !/^[\w-]+$/.test(user) || !/^[0-9a-f]+$/i.test(id)) {
      throw new InvalidInputError(
        `Gist specs look like gist/USER/GIST_ID[/REF]; "${spec}" is not one.`,
      );
    }
    return {
      provider: 'gist',
      url: `https://gist.github.com/${user}/${id}.git`,
      ref: validateRef(decodePart(ref, 'ref')),
      // BinderHub names gist images by the gist id alone.
      buildSlug: id,
      repoLabel: `gist/${user}/${id}`,
    };
  },

  resolveRef: resolveOverGit,
  repoUrl: (spec) => spec.url.replace(/\.git$/, ''),
  refUrl: (spec, sha) => `${spec.url.replace(/\.git$/, '')}/${sha}`,
  specPath: (spec, ref) => `${specName(spec)}/${encodeURIComponent(ref)}`,
  banSubjects: (spec) => canonicalSubjects('gist', decodeFully(specName(spec)), spec.ref, false),
};
