import { describe, expect, it } from '@jest/globals';
import type { PrebuildJob } from '../../src/github/github-jobs.js';
import { decide } from '../../src/github/prebuild.js';
import {
  branchMatches,
  DEFAULT_SETTINGS,
  repoSettingsSchema,
} from '../../src/github/repo-settings.js';

const job = (fields: Partial<PrebuildJob>): PrebuildJob => ({
  installationId: 1,
  owner: 'o',
  repo: 'r',
  private: false,
  sha: 'a'.repeat(40),
  branch: 'main',
  defaultBranch: 'main',
  trigger: 'push',
  ...fields,
});
const fork = { number: 3, updatedAt: '2026-01-01T00:00:00Z', fork: true, headRepo: 'x/r' };

describe('repository settings', () => {
  it('defaults to the default branch and same-repository pull requests, with checks and comments', () => {
    expect(DEFAULT_SETTINGS).toEqual({
      defaultBranch: true,
      branches: [],
      pullRequests: true,
      forks: false,
      comment: true,
      check: true,
      failureConclusion: 'failure',
    });
  });

  it('refuses unknown keys and wrong values', () => {
    expect(repoSettingsSchema.safeParse({ fork: true }).success).toBe(false);
    expect(repoSettingsSchema.safeParse({ failureConclusion: 'maybe' }).success).toBe(false);
  });

  it('matches branch names and patterns, * stopping at /', () => {
    expect(branchMatches('release/1.0', ['release/*'])).toBe(true);
    expect(branchMatches('release/1.0/hotfix', ['release/*'])).toBe(false);
    expect(branchMatches('gh-pages', ['gh-pages'])).toBe(true);
    expect(branchMatches('gh.pages', ['gh-pages', 'gh+pages'])).toBe(false);
  });
});

describe('which events build', () => {
  it('builds pushes to the default branch unless turned off, and listed branches only', () => {
    expect(decide(job({}), DEFAULT_SETTINGS)).toEqual({ build: true });
    expect(decide(job({}), { ...DEFAULT_SETTINGS, defaultBranch: false })).toEqual({
      build: false,
    });
    expect(decide(job({ branch: 'feature' }), DEFAULT_SETTINGS)).toEqual({ build: false });
    expect(decide(job({ branch: 'v2' }), { ...DEFAULT_SETTINGS, branches: ['v*'] })).toEqual({
      build: true,
    });
  });

  it('skips fork pull requests unless allowed, saying why, and always for private repositories', () => {
    const pr = job({ trigger: 'pull_request', pullRequest: fork });
    expect(decide(pr, DEFAULT_SETTINGS)).toEqual({
      build: false,
      reason: expect.stringContaining('forks: true'),
    });
    expect(decide(pr, { ...DEFAULT_SETTINGS, forks: true })).toEqual({ build: true });
    expect(decide({ ...pr, private: true }, { ...DEFAULT_SETTINGS, forks: true })).toEqual({
      build: false,
      reason: expect.stringContaining('private'),
    });
    expect(decide(job({ trigger: 'rerequest', pullRequest: fork }), DEFAULT_SETTINGS).build).toBe(
      false,
    );
  });

  it('follows pullRequests for same-repository pull requests', () => {
    const pr = job({ trigger: 'pull_request', pullRequest: { ...fork, fork: false } });
    expect(decide(pr, DEFAULT_SETTINGS)).toEqual({ build: true });
    expect(decide(pr, { ...DEFAULT_SETTINGS, pullRequests: false })).toEqual({ build: false });
  });
});
