import { providerFor } from './provider-registry.js';
import type { RepoSpec } from './repo-spec.js';

/** BinderHub's `binder_*` values for a launch, which sessions also get as BINDER_* variables. */
export interface BinderLinks {
  /** The repository as a person would open it. */
  repoUrl: string;
  /** The repository at the launched commit. */
  refUrl: string;
  /** `v2/<provider>/<spec>` as requested. */
  request: string;
  /** `v2/<provider>/<spec>` pinned to the commit: the URL that launches the same thing later. */
  persistentRequest: string;
  /** This service's public URL, ending in `/`. */
  launchHost: string;
}

/** The spec part of `/v2/<provider>/<spec>` for `spec` at `ref`, escaped as BinderHub does. */
export function specPath(spec: RepoSpec, ref: string): string {
  return providerFor(spec.provider).specPath(spec, ref);
}

/** The links BinderHub puts in its `ready` event, for `spec` resolved to `sha`. */
export function binderLinks(spec: RepoSpec, sha: string, publicUrl: string): BinderLinks {
  const provider = providerFor(spec.provider);
  return {
    repoUrl: provider.repoUrl(spec),
    refUrl: provider.refUrl(spec, sha),
    request: `v2/${spec.provider}/${provider.specPath(spec, spec.ref)}`,
    persistentRequest: `v2/${spec.provider}/${provider.specPath(spec, sha)}`,
    launchHost: `${publicUrl.replace(/\/+$/, '')}/`,
  };
}
