import type { Config } from '../config.js';
import type { GitHubClient } from './github-client.js';
import type { LookupAll } from './git-host-guard.js';

/**
 * What to build, before its ref is resolved: plain data, carried in build jobs as it is. `Id` is
 * its provider's prefix (repo-spec.ts's RepoSpec has the registry's prefixes).
 */
export interface RepoSpec<Id extends string = string> {
  provider: Id;
  /** A git URL (http, https or git), or an absolute directory path for `local`. */
  url: string;
  /** Branch, tag, full SHA or `HEAD` (the default branch); unresolved. */
  ref: string;
  /** BinderHub's build slug: the part of the image name that names the repository. */
  buildSlug: string;
  /** `<provider>/<spec without ref>`, the `bindery.repo` label. */
  repoLabel: string;
}

/** What parsing a spec may depend on. */
export interface ParseOptions {
  /** `GHE_PROTOCOL://GHE_HOST`, where `gh` specs live. @defaultValue https://github.com */
  githubUrl?: string;
}

/** What resolving a ref may use: configuration, DNS, GitHub's API, the builder's hashing. */
export interface ResolveContext {
  config: Pick<Config, 'git' | 'githubUrl' | 'githubToken'>;
  /** DNS for the git host guard; the system resolver by default. */
  lookup?: LookupAll;
  /**
   * The client for GitHub's REST API (an Octokit): the GitHub App's where the caller has one.
   * Without, one with retry and throttling for GHE_HOST's API (github-client.ts), which sends
   * `githubToken`'s token.
   */
  github?: GitHubClient;
  /** The token the default GitHub client sends for `owner/repo`; GITHUB_TOKEN by default. */
  githubToken?: (owner: string, repo: string) => Promise<string | undefined>;
  /**
   * A directory's content hash, its "commit" (src/build/build-context.ts: the hash covers what
   * the build context packs, so the builder owns it and passes it in).
   */
  hashDirectory?: (path: string) => Promise<string>;
}

/**
 * Everything Bindery knows about one kind of repository, as BinderHub's `RepoProvider` classes
 * hold it (binderhub/repoproviders.py): the spec's syntax, how a ref becomes a commit, the links
 * a launch shows, the build slug, and the ways a spec can be written for ban matching.
 */
export interface RepoProvider<Id extends string = string> {
  /** The prefix: `/v2/<id>/<spec>`, and the `bindery.repo` label's first part. */
  readonly id: Id;
  /** Whether `/v2/<id>/…` names it; `local` directories are only for `bindery build`. */
  readonly launchable: boolean;
  /** Parses the spec after `<id>/` (refusing what is not one, with a sentence). */
  parseSpec(spec: string, options?: ParseOptions): RepoSpec<Id>;
  /** The commit SHA that `spec.ref` names now (a content hash for a directory). */
  resolveRef(spec: RepoSpec<Id>, context: ResolveContext): Promise<string>;
  /** binder_repo_url: the repository as a person would open it. */
  repoUrl(spec: RepoSpec<Id>): string;
  /** binder_ref_url: the repository at commit `sha`. */
  refUrl(spec: RepoSpec<Id>, sha: string): string;
  /** The spec part of `/v2/<id>/<spec>` for `spec` at `ref`, escaped as BinderHub does. */
  specPath(spec: RepoSpec<Id>, ref: string): string;
  /**
   * The canonical ways of writing `spec` for ban and allow patterns, each `<id>/<repo>/<ref>`:
   * every escape decoded, and escaped as the provider's URLs escape it (launch-limits.ts adds
   * the spec as it came in the URL and matches ignoring case).
   */
  banSubjects(spec: RepoSpec<Id>): string[];
}

/** The spec without its ref, as the provider wrote it into the label (`owner/repo`, a URL…). */
export const specName = (spec: RepoSpec): string => spec.repoLabel.slice(spec.provider.length + 1);
