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

/** `gl/<URL-escaped group/project>/<ref>`: a project on gitlab.com, subgroups and all. */
export const gitlabProvider: RepoProvider<'gl'> = {
  id: 'gl',
  launchable: true,

  parseSpec(spec) {
    const [quoted, ref] = splitSpec(spec, 1);
    const namespace = decodePart(quoted ?? '', 'GitLab project');
    if (!namespace.includes('/') || !ref) {
      throw new InvalidInputError(
        `GitLab specs look like gl/GROUP%2FPROJECT/REF (the project path URL-escaped); "${spec}" is not one.`,
      );
    }
    return {
      provider: 'gl',
      url: `https://gitlab.com/${namespace.replace(/\.git$/, '')}.git`,
      ref: validateRef(decodePart(ref, 'ref')),
      // BinderHub's slug: dashes inside a part become `_-`, so a-b/c and a/b-c stay distinct.
      buildSlug: namespace
        .split('/')
        .map((part) => part.replace(/-/g, '_-'))
        .join('-'),
      repoLabel: `gl/${namespace}`,
    };
  },

  // GitLab's API would answer too; ls-remote needs no token and reads the same refs.
  resolveRef: resolveOverGit,
  repoUrl: (spec) => spec.url.replace(/\.git$/, ''),
  refUrl: (spec, sha) => `${spec.url.replace(/\.git$/, '')}/tree/${sha}`,
  specPath: (spec, ref) => `${encodeURIComponent(specName(spec))}/${encodeURIComponent(ref)}`,
  banSubjects: (spec) => canonicalSubjects('gl', decodeFully(specName(spec)), spec.ref, true),
};
