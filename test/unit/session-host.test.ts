import { describe, expect, it } from '@jest/globals';
import { isHostLabel, sessionHostFrom, sessionUrl } from '../../src/proxy/session-host.js';

describe('sessionHostFrom', () => {
  const hosts = sessionHostFrom('{session}.sessions.example.org', 'https://binder.example.org');

  it.each([
    ['bindery-1a2b.sessions.example.org', 'bindery-1a2b'],
    ['Bindery-1A2B.Sessions.Example.org:443', 'bindery-1a2b'],
    ['bindery-1a2b.sessions.example.org.', 'bindery-1a2b'],
    ['binder.example.org', undefined],
    ['sessions.example.org', undefined],
    ['a.b.sessions.example.org', undefined],
    ['-x.sessions.example.org', undefined],
    ['x.sessions.example.org.evil.test', undefined],
    ['x.evilsessions.example.org', undefined],
    ['[::1]:8585', undefined],
    [undefined, undefined],
  ])('reads the session of Host %s as %s', (host, session) => {
    expect(hosts.sessionFor(host)).toBe(session);
  });

  it('builds origins with the public URL scheme and port, unless the pattern names a port', () => {
    expect(hosts.originFor('bindery-1a2b')).toBe('https://bindery-1a2b.sessions.example.org');
    const local = sessionHostFrom('{session}.sessions.test', 'http://127.0.0.1:8585');
    expect(local.originFor('s')).toBe('http://s.sessions.test:8585');
    const ported = sessionHostFrom('{session}.sessions.test:9000', 'http://127.0.0.1:8585');
    expect(ported.originFor('s')).toBe('http://s.sessions.test:9000');
    expect(ported.sessionFor('s.sessions.test:9000')).toBe('s');
  });

  it('makes no origin of a name that would change which host a URL names', () => {
    for (const name of ['evil.test#', 'a@evil.test', 'a:1', 'a.b', 'A', '', 'x'.repeat(64)]) {
      expect(isHostLabel(name)).toBe(false);
      expect(hosts.originFor(name)).toBeUndefined();
    }
  });
});

describe('sessionUrl (the launch ready url)', () => {
  it('is under the public URL when sessions share its origin', () => {
    expect(
      sessionUrl({ publicUrl: 'https://binder.example.org', sessionHost: undefined }, 's1'),
    ).toBe('https://binder.example.org/user/s1/');
  });

  it('is on the session host with Jupyter base URL when BINDERY_SESSION_HOST is set', () => {
    expect(
      sessionUrl(
        { publicUrl: 'https://binder.example.org', sessionHost: '{session}.sessions.example.org' },
        's1',
      ),
    ).toBe('https://s1.sessions.example.org/user/s1/');
  });
});
