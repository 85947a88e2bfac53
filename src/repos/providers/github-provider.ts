import { InvalidInputError } from '../../errors.js';
import { assertGitHostAllowed } from '../git-host-guard.js';
import { githubApiUrl, resolveGitHubRef } from '../github-refs.js';
import type { RepoProvider, RepoSpec } from '../repo-provider.js';
import { specName } from '../repo-provider.js';
import {
  canonicalSubjects,
  decodeFully,
  decodePart,
  splitSpec,
  validateRef,
} from '../spec-parts.js';

/** `owner` and `repo` of a gh spec, from the label this provider wrote (`gh/<owner>/<repo>`). */
function ownerAndRepo(spec: RepoSpec<'gh'>): [owner: string, repo: string] {
  const [owner = '', repo = ''] = specName(spec).split('/');
  return [owner, repo];
}

/** `gh/<owner>/<repo>/<ref>`: a repository on GitHub, or on GitHub Enterprise (GHE_HOST). */
export const githubProvider: RepoProvider<'gh'> = {
  id: 'gh',
  launchable: true,

  parseSpec(spec, { githubUrl = 'https://github.com' } = {}) {
    const [owner, repo, ref] = splitSpec(spec, 2);
    if (!owner || !repo || !ref) {
      throw new InvalidInputError(
        `GitHub specs look like gh/OWNER/REPO/REF; "${spec}" is not one.`,
      );
    }
    const name = repo.replace(/\.git$/, '');
    if (!/^[\w.-]+$/.test(owner) || !/^[\w.-]+$/.test(name)) {
      throw new InvalidInputError(`"${owner}/${name}" is not a GitHub repository name.`);
    }
    return {
      provider: 'gh',
      url: `${githubUrl}/${owner}/${name}`,
      ref: validateRef(decodePart(ref, 'ref')),
      buildSlug: `${owner}-${name}`,
      repoLabel: `gh/${owner}/${name}`,
    };
  },

  /**
   * With GitHub's API (github-refs.ts), as BinderHub does: it resolves abbreviated SHAs, and
   * says whether the repository is public. The host is checked as for a clone first.
   */
  async resolveRef(spec, { config, lookup, github, githubToken }) {
    await assertGitHostAllowed(new URL(spec.url), config.git.allowedHosts, lookup);
    const [owner, repo] = ownerAndRepo(spec);
    const token = githubToken ?? (async () => config.githubToken);
    return resolveGitHubRef(
      { apiUrl: githubApiUrl(config.githubUrl), octokit: github, token: () => token(owner, repo) },
      owner,
      repo,
      spec.ref,
    );
  },

  repoUrl: (spec) => spec.url,
  refUrl: (spec, sha) => `${spec.url}/tree/${sha}`,
  specPath: (spec, ref) => `${specName(spec)}/${encodeURIComponent(ref)}`,
  banSubjects: (spec) => canonicalSubjects('gh', decodeFully(specName(spec)), spec.ref, false),
};
