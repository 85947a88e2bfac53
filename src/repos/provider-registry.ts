import { InvalidInputError } from '../errors.js';
import { gistProvider } from './providers/gist-provider.js';
import { gitProvider } from './providers/git-provider.js';
import { githubProvider } from './providers/github-provider.js';
import { gitlabProvider } from './providers/gitlab-provider.js';
import { localProvider } from './providers/local-provider.js';
import type { RepoProvider, RepoSpec } from './repo-provider.js';

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
} as const;

export type ProviderId = keyof typeof PROVIDERS;
/** A spec of one of the registered providers. */
export type KnownRepoSpec = RepoSpec<ProviderId>;

// Each provider is filed under its own id (a type check; nothing runs).
PROVIDERS satisfies { [Id in ProviderId]: RepoProvider<Id> };

/** The prefixes, for schemas of stored specs (a build job's). */
export const PROVIDER_IDS = Object.keys(PROVIDERS) as [ProviderId, ...ProviderId[]];

const isProviderId = (id: string): id is ProviderId => Object.hasOwn(PROVIDERS, id);

/** The provider of a spec already parsed (its `provider`). */
export function providerFor(id: ProviderId): RepoProvider<ProviderId> {
  return PROVIDERS[id];
}

/** The provider a launch URL names, or a sentence listing the ones there are. */
export function launchableProvider(id: string): RepoProvider<ProviderId> {
  const provider = isProviderId(id) ? PROVIDERS[id] : undefined;
  if (provider?.launchable) return provider;
  const ids = PROVIDER_IDS.filter((known) => PROVIDERS[known].launchable);
  throw new InvalidInputError(
    `"${id}" is not a repository provider; use ${ids.slice(0, -1).join(', ')} or ${ids.at(-1)}.`,
  );
}
