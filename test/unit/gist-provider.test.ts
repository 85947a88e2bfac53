import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { ForbiddenError, InvalidInputError } from '../../src/errors.js';
import { gistProvider } from '../../src/repos/providers/gist-provider.js';

const SHA = 'f'.repeat(40);

describe('gist specs', () => {
  it.each([
    ['someone/0123abcdef', 'HEAD'],
    ['someone/0123abcdef/main', 'main'],
    ['someone/0123abcdef/feature%2Fx', 'feature/x'],
  ])('%s is the gist at %s, named by its id', (spec, ref) => {
    expect(gistProvider.parseSpec(spec)).toEqual({
      provider: 'gist',
      url: 'https://gist.github.com/someone/0123abcdef.git',
      ref,
      buildSlug: '0123abcdef',
      repoLabel: 'gist/someone/0123abcdef',
    });
  });

  it.each(['someone', 'someone/not-hex', 'some one/0123', '/0123'])('refuses %s', (spec) => {
    expect(() => gistProvider.parseSpec(spec)).toThrow(InvalidInputError);
    expect(() => gistProvider.parseSpec(spec)).toThrow(
      `Gist specs look like gist/USER/GIST_ID[/REF]; "${spec}" is not one.`,
    );
  });
});

describe('gist links and ban subjects', () => {
  const spec = gistProvider.parseSpec('someone/0123abcdef/feature%2Fx');

  it('links the gist and its revision as GitHub shows them', () => {
    expect(gistProvider.repoUrl(spec)).toBe('https://gist.github.com/someone/0123abcdef');
    expect(gistProvider.refUrl(spec, SHA)).toBe(
      `https://gist.github.com/someone/0123abcdef/${SHA}`,
    );
  });

  it('writes its spec path with the ref escaped', () => {
    expect(gistProvider.specPath(spec, 'feature/x')).toBe('someone/0123abcdef/feature%2Fx');
  });

  it('is matched decoded and with its ref escaped', () => {
    expect(gistProvider.banSubjects(spec)).toEqual([
      'gist/someone/0123abcdef/feature/x',
      'gist/someone/0123abcdef/feature%2Fx',
    ]);
  });
});

describe('gist refs', () => {
  const config = loadConfig({});

  it('takes a full commit SHA as it is, once gist.github.com is checked', async () => {
    const spec = gistProvider.parseSpec(`someone/0123abcdef/${SHA}`);
    const lookup = async () => [{ address: '140.82.112.4' }];
    await expect(gistProvider.resolveRef(spec, { config, lookup })).resolves.toBe(SHA);
  });

  it('refuses gist.github.com when it resolves to a loopback address', async () => {
    const spec = gistProvider.parseSpec('someone/0123abcdef');
    const lookup = async () => [{ address: '127.0.0.1' }];
    await expect(gistProvider.resolveRef(spec, { config, lookup })).rejects.toThrow(ForbiddenError);
  });
});
