import { InvalidInputError } from '../errors.js';
import { gistProvider } from './providers/gist-provider.js';
import { gitProvider } from './providers/git-provider.js';
import { githubProvider } from './providers/github-provider.js';
import { gitlabProvider } from './providers/gitlab-provider.js';
import { localProvider } from './providers/local-provider.js';
import type { RepoProvider } from './repo-provider.js';

/**
 * Every provider by its prefix (`/v2/<prefix>/<spec>`), as BinderHub's `repo_providers`
 * setting maps them. A new provider is one file in providers/ and one line here.
 */
export const PROVIDERS = {
  gh: githubProvider,
  gl: gitlabProvider,
  gist: gistProvider,
  git: gitProvider,
  local: localProvider,
} as const satisfies Record<string, RepoProvider>;

export type ProviderId = keyof typeof PROVIDERS;

/** The prefixes, for schemas of stored specs (a build job's). */
export const PROVIDER_IDS = Object.keys(PROVIDERS) as [ProviderId, ...ProviderId[]];

const isProviderId = (id: string): id is ProviderId => Object.hasOwn(PROVIDERS, id);

/** The provider of a spec already parsed (its `provider`). */
export function providerFor(id: ProviderId): RepoProvider {
  return PROVIDERS[id];
}

/** The provider a launch URL names, or a sentence listing the ones there are. */
export function launchableProvider(id: string): RepoProvider {
  const provider = isProviderId(id) ? PROVIDERS[id] : undefined;
  if (provider?.launchable) return provider;
  const ids = PROVIDER_IDS.filter((known) => PROVIDERS[known].launchable);
  throw new InvalidInputError(
    `"${id}" is not a repository provider; use ${ids.slice(0, -1).join(', ')} or ${ids.at(-1)}.`,
  );
}
