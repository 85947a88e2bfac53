import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../../src/config.js';
import { renderComment } from '../../src/github/pull-request-comment.js';
import { requestHeadersFor } from '../../src/proxy/proxy-headers.js';
import { safeNext, signInPath } from '../../src/web/sign-in-routes.js';
import { cookieAttributes } from '../../src/web/signed-in-users.js';

describe('sign-in settings', () => {
  it('are off unless both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are set', () => {
    expect(loadConfig({}).signIn).toBeUndefined();
    expect(loadConfig({ GITHUB_CLIENT_ID: 'Iv1.a', GITHUB_CLIENT_SECRET: 's' }).signIn).toEqual({
      clientId: 'Iv1.a',
      clientSecret: 's',
    });
  });

  it.each([
    [{ GITHUB_CLIENT_ID: 'Iv1.a' }, 'GITHUB_CLIENT_SECRET is missing'],
    [{ GITHUB_CLIENT_SECRET: 's' }, 'GITHUB_CLIENT_ID is missing'],
  ])('refuse %o with a sentence naming what is missing', (env, sentence) => {
    expect(() => loadConfig(env)).toThrow(sentence);
  });
});

describe('sign-in cookies', () => {
  it('are HttpOnly and SameSite=Lax, and Secure only when the public URL is https', () => {
    expect(cookieAttributes('https://binder.example.org', '/', 60)).toBe(
      'Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure',
    );
    expect(cookieAttributes('http://localhost:8585', '/sign-in', 600)).toBe(
      'Path=/sign-in; Max-Age=600; HttpOnly; SameSite=Lax',
    );
  });

  it('never reach a session: the proxy drops them from what it forwards', () => {
    const rawHeaders = [
      'Host',
      'binder.example.org',
      'Cookie',
      'bindery-user=abc; _xsrf=x1; bindery-sign-in=s',
      'Cookie',
      'bindery-user=again',
    ];
    const request = { rawHeaders, headers: {}, socket: {} } as unknown as IncomingMessage;
    const forwarded = requestHeadersFor(request, false);
    expect(forwarded.slice(0, 4)).toEqual(['Host', 'binder.example.org', 'Cookie', '_xsrf=x1']);
    expect(forwarded.join('\n')).not.toContain('bindery-');
  });
});

describe('where sign-in returns to', () => {
  it.each([
    ['/v2/gh/secret/demo/main', '/v2/gh/secret/demo/main'],
    ['//evil.example/x', '/'],
    ['/\\evil.example', '/'],
    ['https://evil.example/', '/'],
    [undefined, '/'],
    [['/a', '/b'], '/'],
  ])('%o goes to %s', (next, expected) => {
    expect(safeNext(next)).toBe(expected);
  });

  it('is carried in the sign-in link, escaped', () => {
    expect(signInPath('/v2/gh/a/b/main?urlpath=lab')).toBe(
      '/sign-in?next=%2Fv2%2Fgh%2Fa%2Fb%2Fmain%3Furlpath%3Dlab',
    );
  });
});

describe("a private repository's pull request comment", () => {
  const content = {
    publicUrl: 'https://binder.example.org',
    githubUrl: 'https://github.com',
    owner: 'secret',
    repo: 'demo',
    sha: 'a'.repeat(40),
    state: 'built' as const,
    branch: { name: 'feature/x', repo: 'secret/demo' },
    private: true,
  };
  const signIn = (path: string) =>
    `https://binder.example.org/sign-in?next=${encodeURIComponent(path)}`;

  it('sends its launch links through the sign-in flow when sign-in is on', () => {
    const text = renderComment({ ...content, privateLaunches: true });
    expect(text).toContain(`](${signIn(`/v2/gh/secret/demo/${'a'.repeat(40)}`)})`);
    expect(text).toContain(`its newest commit: ${signIn('/v2/gh/secret/demo/feature%2Fx')}`);
    expect(text).toContain('once they sign in with GitHub');
    expect(text).not.toContain('https://binder.example.org/v2/');
  });

  it('says private repositories do not launch when sign-in is off', () => {
    const text = renderComment(content);
    expect(text).not.toContain('/sign-in');
    expect(text).toContain('launches only public repositories');
  });
});
