import { describe, expect, it } from '@jest/globals';
import {
  confineCookie,
  confineSessionHeaders,
  defaultCookiePath,
} from '../../src/proxy/confine-session-headers.js';

const prefix = '/user/s1/';

describe('defaultCookiePath (RFC 6265 §5.1.4)', () => {
  it.each([
    ['/user/s1/api/status?x=/y', '/user/s1/api'],
    ['/user/s1/', '/user/s1'],
    ['/user/s1', '/user'],
    ['/lab', '/'],
    ['/', '/'],
    ['', '/'],
    ['http://h/x/y', '/'],
  ])('%s → %s', (url, path) => expect(defaultCookiePath(url)).toBe(path));
});

describe('confineCookie', () => {
  it.each([
    // Already the session's: byte for byte as sent.
    ['a=1', 'a=1'],
    ['a=1; Path=/user/s1/', 'a=1; Path=/user/s1/'],
    ['a=1; Path=/user/s1', 'a=1; Path=/user/s1'],
    ['a=1;Path=/user/s1/lab;HttpOnly', 'a=1;Path=/user/s1/lab;HttpOnly'],
    // Outside the session: confined to it.
    ['a=1; Path=/', 'a=1; Path=/user/s1/'],
    ['a=1; Path=/user/', 'a=1; Path=/user/s1/'],
    ['a=1; Path=/user/s2/', 'a=1; Path=/user/s1/'],
    ['a=1; Path=/user/s1-evil/', 'a=1; Path=/user/s1/'],
    ['a=1; Secure; pAtH = / ; SameSite=Lax', 'a=1; Secure; SameSite=Lax; Path=/user/s1/'],
    // The last Path wins in a browser; one Path remains here.
    ['a=1; Path=/user/s1/; Path=/', 'a=1; Path=/user/s1/'],
    ['a=1; Path=/; Path=/user/s1/x', 'a=1; Path=/user/s1/x'],
    // No valid Path: the default path, inside the session for this request.
    ['a=1; Path=relative', 'a=1'],
    ['a=1; Path', 'a=1'],
    [`a=1; Path=/user/s1/${'x'.repeat(1100)}`, 'a=1'],
    // Domain never survives, whatever its case or spacing.
    ['a=1; Domain=example.org', 'a=1'],
    ['a=1; domain = .sessions.example.org; Path=/user/s1/', 'a=1; Path=/user/s1/'],
    ['a=1; DOMAIN', 'a=1'],
  ])('%s → %s', (cookie, confined) => {
    expect(confineCookie(cookie, prefix, '/user/s1/tree')).toBe(confined);
  });

  it('confines a cookie whose default path is outside the session', () => {
    expect(confineCookie('a=1', prefix, '/user/s1')).toBe('a=1; Path=/user/s1/');
    expect(confineCookie('a=1; Path=x', prefix, '/lab')).toBe('a=1; Path=/user/s1/');
  });
});

describe('confineSessionHeaders', () => {
  it('drops origin-wide headers in any case, confines cookies, and keeps the rest in order', () => {
    const raw = [
      'Content-Type',
      'text/html',
      'Service-Worker-Allowed',
      '/',
      'SERVICE-WORKER-ALLOWED',
      '/user/',
      'Clear-Site-Data',
      '"*"',
      'Strict-Transport-Security',
      'max-age=1; includeSubDomains',
      'Alt-Svc',
      'h2=":443"',
      'NEL',
      '{}',
      'Report-To',
      '{}',
      'Set-Cookie',
      'a=1; Path=/',
      'set-cookie',
      'b=2',
      'Reporting-Endpoints',
      'x="https://r.test/"',
      'X-Kept',
      'yes',
    ];
    expect(confineSessionHeaders(raw, 's1', '/user/s1/lab')).toEqual([
      'Content-Type',
      'text/html',
      'Set-Cookie',
      'a=1; Path=/user/s1/',
      'set-cookie',
      'b=2',
      'Reporting-Endpoints',
      'x="https://r.test/"',
      'X-Kept',
      'yes',
    ]);
  });
});
