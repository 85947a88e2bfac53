import { describe, expect, it } from '@jest/globals';
import { placeRequest, type RequestLine } from '../../src/proxy/place-request.js';
import { sessionHostFrom } from '../../src/proxy/session-host.js';

const line = (url: string, more: Partial<RequestLine> = {}): RequestLine => ({
  method: 'GET',
  url,
  host: 'binder.example.org',
  upgrade: false,
  ...more,
});
const hosts = sessionHostFrom('{session}.sessions.example.org', 'https://binder.example.org');

describe('placeRequest without session hosts', () => {
  it.each([
    ['/', { to: 'service' }],
    ['/v2/gh/a/b/HEAD', { to: 'service' }],
    ['/user', { to: 'service' }],
    ['/user/', { to: 'none', session: undefined }],
    ['/user/s1/lab?x', { to: 'session', session: 's1', path: '/user/s1/lab?x' }],
    ['/user/s1?token=t', { to: 'redirect', location: '/user/s1/?token=t' }],
  ])('GET %s', (url, placement) => expect(placeRequest(line(url), undefined)).toEqual(placement));

  it('forwards a bare path that is not a page load, and refuses upgrades elsewhere', () => {
    expect(placeRequest(line('/user/s1', { method: 'POST' }), undefined)).toEqual({
      to: 'session',
      session: 's1',
      path: '/user/s1',
    });
    expect(placeRequest(line('/', { upgrade: true }), undefined)).toEqual({
      to: 'none',
      session: undefined,
    });
  });
});

describe('placeRequest with session hosts', () => {
  it('sends session paths on the service host to the session host, for a valid name only', () => {
    expect(placeRequest(line('/user/s1/lab?token=t'), hosts)).toEqual({
      to: 'session host',
      session: 's1',
      location: 'https://s1.sessions.example.org/user/s1/lab?token=t',
    });
    expect(placeRequest(line('/user/a@evil.test/'), hosts)).toEqual({
      to: 'session host',
      session: 'a@evil.test',
      location: undefined,
    });
    expect(placeRequest(line('/v2/gh/a/b/HEAD'), hosts)).toEqual({ to: 'service' });
  });

  const on = (url: string, more: Partial<RequestLine> = {}) =>
    placeRequest(line(url, { host: 's1.sessions.example.org', ...more }), hosts);

  it('gives everything on a session host to that session, mapping paths into /user/<session>/', () => {
    expect(on('/user/s1/api/status')).toEqual({
      to: 'session',
      session: 's1',
      path: '/user/s1/api/status',
    });
    expect(on('/')).toEqual({ to: 'redirect', location: '/user/s1/' });
    expect(on('/v2/gh/a/b/HEAD')).toEqual({ to: 'redirect', location: '/user/s1/v2/gh/a/b/HEAD' });
    expect(on('/user/s1?x')).toEqual({ to: 'redirect', location: '/user/s1/?x' });
    expect(on('/api/kernels', { method: 'POST' })).toEqual({
      to: 'session',
      session: 's1',
      path: '/user/s1/api/kernels',
    });
    expect(on('/api/events', { upgrade: true })).toEqual({
      to: 'session',
      session: 's1',
      path: '/user/s1/api/events',
    });
    // Another session's path is s1's path too: a session host never reaches another session.
    expect(on('/user/s2/api/status', { method: 'POST' })).toEqual({
      to: 'session',
      session: 's1',
      path: '/user/s1/user/s2/api/status',
    });
    expect(on('http://elsewhere/x')).toEqual({ to: 'none', session: 's1' });
  });
});
