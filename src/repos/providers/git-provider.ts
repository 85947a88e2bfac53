import { InvalidInputError } from '../../errors.js';
import { assertGitHostAllowed } from '../git-host-guard.js';
import type { RepoProvider, RepoSpec, ResolveContext } from '../repo-provider.js';
import { specName } from '../repo-provider.js';
import { resolveRef } from '../resolve-ref.js';
import {
  canonicalSubjects,
  decodeFully,
  decodePart,
  parseGitUrl,
  splitSpec,
  validateRef,
} from '../spec-parts.js';

/**
 * Resolves `spec.ref` with `git ls-remote` after the git host guard has vetted the URL's host:
 * how every provider without an API of its own (git, gl, gist) finds its commit.
 */
export async function resolveOverGit(spec: RepoSpec, context: ResolveContext): Promise<string> {
  const { config, lookup } = context;
  await assertGitHostAllowed(new URL(spec.url), config.git.allowedHosts, lookup);
  return resolveRef(spec.url, spec.ref, config.git.cloneTimeoutMs);
}

/** `git/<URL-escaped URL>/<ref>`: any public git repository over http, https or git. */
export const gitProvider: RepoProvider<'git'> = {
  id: 'git',
  launchable: true,

  parseSpec(spec) {
    const [quoted, ref] = splitSpec(spec, 1);
    if (!quoted || !ref) {
      throw new InvalidInputError(
        `Git specs look like git/URL-ESCAPED-URL/REF; "${spec}" is not one.`,
      );
    }
    return gitSpec(parseGitUrl(decodePart(quoted, 'repository URL')).href, decodePart(ref, 'ref'));
  },

  resolveRef: resolveOverGit,
  repoUrl: (spec) => spec.url.replace(/\.git$/, ''),
  // BinderHub's GitRepoProvider has no page per commit; its ref URL is the repository.
  refUrl: (spec) => spec.url,
  specPath: (spec, ref) => `${encodeURIComponent(specName(spec))}/${encodeURIComponent(ref)}`,

  banSubjects(spec) {
    // `http://host//a//b` is `http://host/a/b` to most git hosts; the scheme's `//` stays.
    const url = decodeFully(specName(spec)).replace(/([^:/])\/{2,}/g, '$1/');
    return canonicalSubjects('git', url, spec.ref, true);
  },
};

/** The spec of git URL `url` (already checked by parseGitUrl) at `ref`. */
export function gitSpec(url: string, ref: string): RepoSpec<'git'> {
  return { provider: 'git', url, ref: validateRef(ref), buildSlug: url, repoLabel: `git/${url}` };
}
