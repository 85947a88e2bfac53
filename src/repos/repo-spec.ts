import { InvalidInputError } from '../errors.js';
import { launchableProvider, type KnownRepoSpec, type ProviderId } from './provider-registry.js';
import { gitSpec } from './providers/git-provider.js';
import { localProvider } from './providers/local-provider.js';
import type { ParseOptions } from './repo-provider.js';
import { parseGitUrl } from './spec-parts.js';

/** What to build, before its ref is resolved (repo-provider.ts), of a registered provider. */
export type RepoSpec = KnownRepoSpec;
export { parseGitUrl, validateRef } from './spec-parts.js';
export type Provider = ProviderId;

/**
 * What `bindery build <path|url>` names: a git URL (checked) or a local directory.
 */
export function parseSource(arg: string, ref?: string): RepoSpec {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg) || /^[\w.-]+@[\w.-]+:/.test(arg)) {
    return gitSpec(parseGitUrl(arg).href, ref ?? 'HEAD');
  }
  if (ref !== undefined) {
    throw new InvalidInputError(
      `A ref (${ref}) applies to git URLs; ${arg} is a directory, built as its files are now.`,
    );
  }
  return localProvider.parseSpec(arg);
}

/**
 * Parses a BinderHub spec (the part of `/v2/<provider>/<spec>` after the provider) into the
 * repository it names, with that provider's rules (providers/). `githubUrl` is
 * `GHE_PROTOCOL://GHE_HOST` for GitHub Enterprise.
 */
export function parseSpec(provider: string, spec: string, options: ParseOptions = {}): RepoSpec {
  return launchableProvider(provider).parseSpec(spec, options);
}
