import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { ForbiddenError } from '../../src/errors.js';
import { parseSpec } from '../../src/repos/repo-spec.js';
import { checkSpecAllowed, clientKey } from '../../src/web/launch-limits.js';

describe('clientKey: who counts as one client', () => {
  it('counts an IPv4 address as itself', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('203.0.113.8')).toBe('203.0.113.8');
  });

  it('counts an IPv6 address by its /64, however it is written', () => {
    const key = '2001:db8:1:2::/64';
    for (const address of [
      '2001:db8:1:2::1',
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0DB8:0001:0002:0000:0000:0000:0009',
      '2001:db8:1:2:a:b:c:d',
      '2001:db8:1:2::a%eth0',
    ]) {
      expect(clientKey(address)).toBe(key);
    }
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1')).toBe('fe80:0:0:0::/64');
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 address', () => {
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(clientKey('0:0:0:0:0:ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('puts what is not an address in one bucket of its own', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('not-an-address')).toBe('unknown');
  });
});

describe('checkSpecAllowed: bans hold however a spec is written', () => {
  const bans = loadConfig({
    BINDERY_BANNED_SPECS: [
      '^gh/evil/repo',
      '^gl/evil/project',
      '^git/https://evil\\.example/team/',
      // BinderHub's style: the spec as it appears in the URL, escaped.
      '^git/https%3A%2F%2Fshady\\.example%2F',
    ].join(','),
  }).quotas;
  const refused = (provider: string, path: string) => {
    try {
      checkSpecAllowed(bans, parseSpec(provider, path), path);
      return false;
    } catch (error) {
      expect(error).toBeInstanceOf(ForbiddenError);
      return true;
    }
  };

  it('refuses the banned spec written plainly', () => {
    expect(refused('gh', 'evil/repo/main')).toBe(true);
    expect(refused('gl', 'evil%2Fproject/main')).toBe(true);
    expect(refused('git', `${encodeURIComponent('https://evil.example/team/x')}/HEAD`)).toBe(true);
    expect(refused('git', `${encodeURIComponent('https://shady.example/x')}/HEAD`)).toBe(true);
  });

  it('refuses it in another case (GitHub and GitLab names ignore case)', () => {
    expect(refused('gh', 'Evil/Repo/main')).toBe(true);
    expect(refused('gh', 'EVIL/repo.git/main')).toBe(true);
    expect(refused('gl', 'Evil%2FProject/main')).toBe(true);
    expect(refused('git', `${encodeURIComponent('HTTPS://EVIL.example/Team/x')}/HEAD`)).toBe(true);
  });

  it('refuses it with other escaping: lower-case hex, escaped letters, escaped twice', () => {
    expect(refused('gl', 'evil%2fproject/main')).toBe(true);
    expect(refused('gl', '%65vil%2F%70roject/main')).toBe(true);
    expect(refused('git', 'https%3a%2f%2fevil.example%2fteam%2fx/HEAD')).toBe(true);
    expect(refused('git', 'https%3A%2F%2Fevil.example%2F%2574eam%2Fx/HEAD')).toBe(true);
    expect(refused('git', 'https%3A%2F%2Fevil.example%2F%2Fteam%2Fx/HEAD')).toBe(true);
    expect(refused('git', 'https%3a%2f%2fshady.example%2fx/HEAD')).toBe(true);
    expect(refused('git', `${encodeURIComponent('https://shady.example:443/x')}/HEAD`)).toBe(true);
    expect(refused('git', 'https%3A%2F%2F%73hady.example%2Fx/HEAD')).toBe(true);
  });

  it('still serves what is not banned', () => {
    expect(refused('gh', 'evil/other/main')).toBe(false);
    expect(refused('gh', 'good/repo/main')).toBe(false);
    expect(refused('git', `${encodeURIComponent('https://evil.example/other/x')}/HEAD`)).toBe(
      false,
    );
  });

  it('matches the allowed list the same way', () => {
    const allowed = loadConfig({ BINDERY_ALLOWED_SPECS: '^gh/good/,^gl/good%2F' }).quotas;
    const allows = (provider: string, path: string) => {
      try {
        checkSpecAllowed(allowed, parseSpec(provider, path), path);
        return true;
      } catch {
        return false;
      }
    };
    expect(allows('gh', 'Good/repo/main')).toBe(true);
    expect(allows('gl', 'good%2fproject/main')).toBe(true);
    expect(allows('gl', '%67ood%2Fproject/main')).toBe(true);
    expect(allows('gh', 'bad/repo/main')).toBe(false);
    expect(allows('gl', 'bad%2Fgood/main')).toBe(false);
  });
});
