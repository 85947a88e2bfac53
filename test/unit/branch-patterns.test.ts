import { describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { branchMatches } from '../../src/github/repo-settings.js';

describe('branch patterns of .github/bindery.yml', () => {
  it('answers `**********!` against a 40-character branch in under 10 ms', () => {
    const branch = 'a'.repeat(40);
    const started = performance.now();
    const matched = branchMatches(branch, ['**********!']);
    const elapsed = performance.now() - started;
    expect(matched).toBe(false);
    expect(elapsed).toBeLessThan(10);
  });

  it('stays fast for every pattern shape a repository can write', () => {
    const branch = `${'ab'.repeat(100)}/${'a'.repeat(54)}`;
    const patterns = ['*a*a*a*a*a*a*a*a*a*a*b', '*/*a*a*a*a*!', `${'*?'.repeat(60)}`, '**/**!'];
    const started = performance.now();
    for (const pattern of patterns) expect(branchMatches(branch, [pattern])).toBe(false);
    expect(performance.now() - started).toBeLessThan(10);
  });

  it('still matches as before: `*` is any text without `/`, everything else is literal', () => {
    expect(branchMatches('release/1.0', ['release/*'])).toBe(true);
    expect(branchMatches('release/1.0/hotfix', ['release/*'])).toBe(false);
    expect(branchMatches('release/', ['release/*'])).toBe(true);
    expect(branchMatches('feature/a-b', ['feature/*-*'])).toBe(true);
    expect(branchMatches('feature/ab', ['feature/*-*'])).toBe(false);
    expect(branchMatches('x/y', ['*/*'])).toBe(true);
    expect(branchMatches('x/y/z', ['*/*'])).toBe(false);
    expect(branchMatches('x/y/z', ['*/*/*'])).toBe(true);
    expect(branchMatches('main', ['*'])).toBe(true);
    expect(branchMatches('a/b', ['*'])).toBe(false);
    expect(branchMatches('gh.pages', ['gh-pages', 'gh+pages', 'gh?pages', 'gh[.]pages'])).toBe(
      false,
    );
    expect(branchMatches('gh?pages', ['gh?pages'])).toBe(true);
    expect(branchMatches('v1.2.3', ['v*.*.*'])).toBe(true);
    expect(branchMatches('v1.2', ['v*.*.*'])).toBe(false);
    expect(branchMatches('aXbXc', ['a*b*c'])).toBe(true);
    expect(branchMatches('abcbc', ['a*bc'])).toBe(true);
    expect(branchMatches('abcbd', ['a*bc'])).toBe(false);
  });
});
