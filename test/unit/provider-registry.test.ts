import { describe, expect, it } from '@jest/globals';
import { InvalidInputError } from '../../src/errors.js';
import { buildJobSchema } from '../../src/queue/build-job.js';
import {
  launchableProvider,
  PROVIDER_IDS,
  PROVIDERS,
  providerFor,
} from '../../src/repos/provider-registry.js';
import { parseSource, parseSpec } from '../../src/repos/repo-spec.js';

const SHA = '1'.repeat(40);

describe('the provider registry', () => {
  it('holds each provider under its own prefix', () => {
    expect(PROVIDER_IDS).toEqual(['gh', 'gl', 'gist', 'git', 'local']);
    for (const id of PROVIDER_IDS) expect(providerFor(id).id).toBe(id);
  });

  it.each([
    ['gh', 'owner/repo/main'],
    ['gl', 'group%2Fproject/main'],
    ['gist', 'someone/0123abcdef/main'],
    ['git', 'https%3A%2F%2Fgit.example.org%2Fr/main'],
  ])('parses a %s spec with that provider, and its spec path round-trips', (id, spec) => {
    const parsed = parseSpec(id, spec);
    expect(parsed).toEqual(PROVIDERS[id as 'gh'].parseSpec(spec));
    expect(providerFor(parsed.provider).specPath(parsed, parsed.ref)).toBe(spec);
  });

  it.each(['local', 'bb', 'GH', '', 'constructor', '__proto__', 'toString'])(
    'refuses %j in a launch URL, naming the providers there are',
    (id) => {
      expect(() => launchableProvider(id)).toThrow(InvalidInputError);
      expect(() => launchableProvider(id)).toThrow(
        `"${id}" is not a repository provider; use gh, gl, gist or git.`,
      );
    },
  );

  it('lets build jobs carry a spec of every provider, and no other', () => {
    const job = (spec: object) =>
      buildJobSchema.safeParse({ imageName: `r/x:${SHA}`, ref: SHA, spec }).success;
    for (const spec of [
      parseSpec('gh', 'o/r/main'),
      parseSource('/srv/x'),
      parseSource('https://h/r'),
    ]) {
      expect(job(spec)).toBe(true);
    }
    expect(job({ ...parseSpec('gh', 'o/r/main'), provider: 'bb' })).toBe(false);
  });
});
