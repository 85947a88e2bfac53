import { describe, expect, it, jest } from '@jest/globals';
import { ForbiddenError, NotFoundError } from '../../src/errors.js';
import { assertGitHostAllowed, pinRemote, type LookupAll } from '../../src/repos/git-host-guard.js';

// Every test injects `lookup`: no test resolves a name or sends a packet.

/** A lookup that answers from `table` and fails like getaddrinfo for any other name. */
function fakeLookup(table: Record<string, string[]>) {
  return jest.fn<LookupAll>(async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    }
    return addresses.map((address) => ({ address }));
  });
}

/** What assertGitHostAllowed rejected with; fails the test when it resolved. */
async function refusal(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('the host was allowed');
    },
    (error: Error) => error,
  );
}

describe("assertGitHostAllowed refuses hosts inside the operator's network", () => {
  it.each([
    ['loopback', '127.0.0.1'],
    ['RFC 1918', '10.1.2.3'],
    ['cloud metadata', '169.254.169.254'],
    ['IPv6 loopback', '::1'],
    ['IPv4-mapped private', '::ffff:192.168.0.10'],
  ])('a name resolving to %s (%s)', async (_what, address) => {
    const lookup = fakeLookup({ 'git.sneaky.example': [address] });
    const error = await refusal(
      assertGitHostAllowed(new URL('https://git.sneaky.example/o/r.git'), [], lookup),
    );
    expect(error).toBeInstanceOf(ForbiddenError);
    expect((error as ForbiddenError).status).toBe(403);
    expect(error.message).toBe(
      `The git host git.sneaky.example resolves to ${address}, a private or local address; ` +
        'Bindery only clones from public hosts. An operator can allow it with ' +
        'BINDERY_GIT_ALLOWED_HOSTS=git.sneaky.example.',
    );
    expect(lookup).toHaveBeenCalledWith('git.sneaky.example');
  });

  it('a name with one public and one private address, naming only the private one', async () => {
    const lookup = fakeLookup({ 'mixed.example': ['93.184.216.34', '10.0.0.5'] });
    const error = await refusal(
      assertGitHostAllowed(new URL('https://mixed.example/r'), [], lookup),
    );
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.message).toContain('resolves to 10.0.0.5, a private or local address');
    expect(error.message).not.toContain('93.184.216.34');
  });

  it('lists every private address a name resolves to', async () => {
    const lookup = fakeLookup({ 'inside.example': ['127.0.0.1', '::1'] });
    const error = await refusal(
      assertGitHostAllowed(new URL('http://inside.example/r'), [], lookup),
    );
    expect(error.message).toContain('resolves to 127.0.0.1, ::1, a private or local address');
  });

  it('a host written as a name in upper case, looked up in lower case', async () => {
    const lookup = fakeLookup({ localhost: ['127.0.0.1'] });
    const error = await refusal(
      assertGitHostAllowed(new URL('http://LOCALHOST:8080/r'), [], lookup),
    );
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.message).toContain('BINDERY_GIT_ALLOWED_HOSTS=localhost.');
  });
});

describe('assertGitHostAllowed with literal addresses', () => {
  it.each([
    ['http://127.0.0.1/r', '127.0.0.1'],
    ['http://169.254.169.254/latest/meta-data', '169.254.169.254'],
    ['http://[::1]:3000/r', '::1'],
    ['http://[fe80::1]/r', 'fe80::1'],
    // The URL parser turns decimal, hex and short forms into dotted quads; so must the guard.
    ['http://2130706433/r', '127.0.0.1'],
    ['http://0x7f.1/r', '127.0.0.1'],
    ['http://[::ffff:10.0.0.1]/r', '::ffff:a00:1'],
  ])('refuses %s without a lookup', async (url, address) => {
    const lookup = fakeLookup({});
    const error = await refusal(assertGitHostAllowed(new URL(url), [], lookup));
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.message).toContain(`The git host ${address} resolves to ${address}`);
    expect(error.message).toContain(`BINDERY_GIT_ALLOWED_HOSTS=${address}.`);
    expect(lookup).not.toHaveBeenCalled();
  });

  it.each(['http://8.8.8.8/r', 'https://[2606:4700::1111]/r'])(
    'allows %s without a lookup',
    async (url) => {
      const lookup = fakeLookup({});
      await expect(assertGitHostAllowed(new URL(url), [], lookup)).resolves.toEqual({
        url,
        config: {},
      });
      expect(lookup).not.toHaveBeenCalled();
    },
  );
});

describe('assertGitHostAllowed lets the operator allow hosts', () => {
  it('allows a listed host without looking it up', async () => {
    const lookup = fakeLookup({ 'git.internal': ['10.0.0.2'] });
    await expect(
      assertGitHostAllowed(new URL('https://git.internal/team/r.git'), ['git.internal'], lookup),
    ).resolves.toMatchObject({ config: {} });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('matches a listed host whatever the case of the URL', async () => {
    const lookup = fakeLookup({});
    await expect(
      assertGitHostAllowed(new URL('https://Git.Internal/r'), ['git.internal'], lookup),
    ).resolves.toMatchObject({ config: {} });
  });

  it('allows host:port entries for that port only', async () => {
    const lookup = fakeLookup({ 'git.internal': ['10.0.0.2'] });
    await expect(
      assertGitHostAllowed(new URL('http://git.internal:3000/r'), ['git.internal:3000'], lookup),
    ).resolves.toMatchObject({ config: {} });
    const error = await refusal(
      assertGitHostAllowed(new URL('http://git.internal:4000/r'), ['git.internal:3000'], lookup),
    );
    expect(error).toBeInstanceOf(ForbiddenError);
  });

  it('allows a listed IPv6 literal', async () => {
    await expect(
      assertGitHostAllowed(new URL('http://[::1]:9418/r'), ['::1'], fakeLookup({})),
    ).resolves.toMatchObject({ config: {} });
  });

  it('does not let a listed host vouch for another', async () => {
    const lookup = fakeLookup({ 'git.internal.evil.example': ['10.0.0.2'] });
    const error = await refusal(
      assertGitHostAllowed(
        new URL('https://git.internal.evil.example/r'),
        ['git.internal'],
        lookup,
      ),
    );
    expect(error).toBeInstanceOf(ForbiddenError);
  });
});

describe('pinRemote', () => {
  it('holds git:// to the address itself, since git has no resolve list for it', () => {
    expect(pinRemote(new URL('git://git.example/r.git'), ['203.0.114.9']).url).toBe(
      'git://203.0.114.9/r.git',
    );
    expect(pinRemote(new URL('git://git.example:9419/r.git'), ['2001:4860::8']).url).toBe(
      'git://[2001:4860::8]:9419/r.git',
    );
  });

  it('keeps the host name of http(s) for TLS and pins its port', () => {
    expect(pinRemote(new URL('http://git.example:8080/r'), ['203.0.114.9'])).toEqual({
      url: 'http://git.example:8080/r',
      config: { 'http.curloptResolve': 'git.example:8080:203.0.114.9' },
    });
  });
});

describe('assertGitHostAllowed with public and unknown names', () => {
  it('resolves for a name whose addresses are all public', async () => {
    const lookup = fakeLookup({ 'github.com': ['140.82.121.4', '2606:50c0:8000::154'] });
    await expect(
      assertGitHostAllowed(new URL('https://github.com/o/r'), [], lookup),
    ).resolves.toEqual({
      url: 'https://github.com/o/r',
      // Git connects to what was vetted, not to what DNS says next (rebinding).
      config: { 'http.curloptResolve': 'github.com:443:140.82.121.4,[2606:50c0:8000::154]' },
    });
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('answers NotFoundError naming the host when it does not resolve', async () => {
    const error = await refusal(
      assertGitHostAllowed(new URL('https://no-such-host.invalid/r'), [], fakeLookup({})),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).status).toBe(404);
    expect(error.message).toBe(
      "The git host no-such-host.invalid does not resolve; check the URL's host name.",
    );
  });
});
