import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { ForbiddenError } from '../../src/errors.js';
import { parseSpec } from '../../src/repos/repo-spec.js';
import { QuotaError, quotaError } from '../../src/sessions/quotas.js';
import { checkSpecAllowed, hasApiToken } from '../../src/web/launch-limits.js';
import { specFromPath } from '../../src/web/build-route.js';

describe('hasApiToken', () => {
  const tokens = ['secret-one', 'secret-two'];
  it('accepts a listed token as Bearer or token', () => {
    expect(hasApiToken('Bearer secret-two', tokens)).toBe(true);
    expect(hasApiToken('token secret-one', tokens)).toBe(true);
  });
  it('refuses anything else', () => {
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer secret',
      'Bearer secret-one2',
      'Basic secret-one',
    ]) {
      expect(hasApiToken(header, tokens)).toBe(false);
    }
    expect(hasApiToken('Bearer x', [])).toBe(false);
  });
});

describe('checkSpecAllowed', () => {
  const spec = parseSpec('gh', 'evil/repo/main');
  it('refuses a banned spec and one outside the allowed list, with a sentence', () => {
    const banned = loadConfig({ BINDERY_BANNED_SPECS: '^gh/evil/' }).quotas;
    expect(() => checkSpecAllowed(banned, spec, 'evil/repo/main')).toThrow(ForbiddenError);
    expect(() => checkSpecAllowed(banned, spec, 'evil/repo/main')).toThrow(
      'gh/evil/repo is not allowed on this service.',
    );
    const allowed = loadConfig({ BINDERY_ALLOWED_SPECS: '^gh/good/' }).quotas;
    expect(() => checkSpecAllowed(allowed, spec, 'evil/repo/main')).toThrow(
      /not among the repositories/,
    );
    expect(() =>
      checkSpecAllowed(allowed, parseSpec('gh', 'good/r/HEAD'), 'good/r/HEAD'),
    ).not.toThrow();
  });
});

describe('quotaError', () => {
  it("uses BinderHub's messages for the total and the per-repository cap, and a 429", () => {
    const quotas = loadConfig({ BINDERY_MAX_SESSIONS_PER_CLIENT: '3' }).quotas;
    expect(quotaError('total', quotas, 'gh/a/b')).toEqual(
      new QuotaError('Too many users on this BinderHub! Try again soon.'),
    );
    expect(quotaError('repo', quotas, 'gh/a/b').message).toBe(
      'Too many users running gh/a/b! Try again soon.',
    );
    expect(quotaError('client', quotas, 'gh/a/b').message).toMatch(
      /^You already have 3 sessions running here/,
    );
    expect(quotaError('client', quotas, 'gh/a/b').status).toBe(429);
  });
});

describe('the launch URL', () => {
  it('keeps the spec escaped, as the parser expects', () => {
    expect(specFromPath('/build/git/https%3A%2F%2Fh%2Fr/HEAD', '/build/')).toEqual({
      provider: 'git',
      path: 'https%3A%2F%2Fh%2Fr/HEAD',
    });
    expect(specFromPath('/build/gh', '/build/')).toEqual({ provider: 'gh', path: '' });
  });
});
