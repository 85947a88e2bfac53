import { z } from 'zod';
import type { InstallationOctokit } from './github-app.js';

/** Where a repository keeps its Bindery settings; the owner's `.github` repository is the fallback. */
export const SETTINGS_PATH = '.github/bindery.yml';

/**
 * `.github/bindery.yml`. Unknown keys are refused, so that a misspelt setting (`fork: true`)
 * is reported rather than silently ignored.
 */
export const repoSettingsSchema = z
  .object({
    /** Prebuild each push to the default branch. @defaultValue true */
    defaultBranch: z.boolean().default(true),
    /** More branches to prebuild on push: names, or patterns where `*` stands for any text without `/`. @defaultValue [] */
    branches: z.array(z.string().min(1)).default([]),
    /** Prebuild pull requests whose branch is in the repository itself. @defaultValue true */
    pullRequests: z.boolean().default(true),
    /** Prebuild pull requests from forks too; never done for private repositories. @defaultValue false */
    forks: z.boolean().default(false),
    /** Keep one comment with a launch badge on each pull request. @defaultValue true */
    comment: z.boolean().default(true),
    /** Report each prebuild as a check run named "Bindery". @defaultValue true */
    check: z.boolean().default(true),
    /** The check run's conclusion when the build fails; `neutral` never blocks a merge. @defaultValue failure */
    failureConclusion: z.enum(['failure', 'neutral']).default('failure'),
  })
  .strict();

export type RepoSettings = z.infer<typeof repoSettingsSchema>;

export const DEFAULT_SETTINGS: RepoSettings = repoSettingsSchema.parse({});

/** The settings, or the sentence that says what is wrong with the file and how to fix it. */
export type SettingsResult = { settings: RepoSettings } | { problem: string };

/**
 * Reads the repository's settings from its default branch with Probot's config loader (which
 * falls back to the owner's `.github` repository and follows `_extends`). Always the default
 * branch: a pull request must not be able to change the rules it is judged by (a fork turning
 * `forks` on). A missing file means the defaults; GitHub being away throws, for a retry.
 */
export async function readRepoSettings(
  octokit: InstallationOctokit,
  owner: string,
  repo: string,
): Promise<SettingsResult> {
  let loaded: unknown;
  try {
    const { config } = await octokit.config.get({ owner, repo, path: SETTINGS_PATH });
    loaded = config;
  } catch (error) {
    const message = (error as Error).message;
    if (!message.startsWith('[@probot/octokit-plugin-config]')) throw error;
    return {
      problem: `${SETTINGS_PATH} could not be read: ${message.replace(/^\[[^\]]*\] /, '')}. Fix the file's YAML; until then Bindery does not prebuild this repository.`,
    };
  }
  const parsed = repoSettingsSchema.safeParse(loaded ?? {});
  if (parsed.success) return { settings: parsed.data };
  const problems = parsed.error.issues.map((issue) => {
    const where = issue.path.length > 0 ? `\`${issue.path.join('.')}\`` : 'the file';
    return issue.code === 'unrecognized_keys'
      ? `${where}: ${issue.keys.map((key) => `\`${key}\``).join(', ')} is not a setting Bindery knows`
      : `${where}: ${issue.message}`;
  });
  return {
    problem:
      `${SETTINGS_PATH} is not valid: ${problems.join('; ')}. ` +
      `The settings are defaultBranch, branches, pullRequests, forks, comment, check and failureConclusion (failure or neutral).`,
  };
}

/**
 * Whether `branch` is one of `patterns`: exact names, or `*` for any text without `/`.
 * Matched without regular expressions: a pattern is a repository's to write, and `**********!`
 * as a backtracking regex takes minutes against a 40-character branch.
 */
export function branchMatches(branch: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => globMatches(branch, pattern));
}

/**
 * `*` stands for any run of characters other than `/`; everything else is literal. Since `*`
 * never crosses `/`, the name and the pattern are compared segment by segment, and each
 * segment with the greedy wildcard walk that goes back only to the last `*`: at most
 * (name length × pattern length) steps, never exponential.
 */
function globMatches(name: string, pattern: string): boolean {
  const names = name.split('/');
  const parts = pattern.split('/');
  return names.length === parts.length && parts.every((part, i) => segmentMatches(names[i]!, part));
}

function segmentMatches(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
