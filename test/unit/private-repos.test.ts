import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import type { ContainerEngine } from '../../src/engine/container-engine.js';
import { ForbiddenError } from '../../src/errors.js';
import { parseSpec } from '../../src/repos/repo-spec.js';

const SHA = 'b'.repeat(40);
const OPERATOR_TOKEN = 'ghp_operator_can_read_private';
/** github.com as DNS answers it; no test here looks a name up. */
const lookup = async () => [{ address: '140.82.112.3' }];

beforeAll(() => {
  if (!nock.isActive()) nock.activate();
  nock.disableNetConnect();
});
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
  nock.restore();
});

/**
 * An engine on which every image exists already: the GitHub App prebuilt the private
 * repository's commit with its installation token, as it does for every push.
 */
function engineWithEveryImage() {
  const asked: string[] = [];
  const engine = {
    imageExists: async (name: string) => {
      asked.push(name);
      return true;
    },
  } as unknown as ContainerEngine;
  return { engine, asked };
}

/** GitHub's API as it answers a token that can read owner/secret, a private repository. */
function githubWithPrivateRepository(ref: string) {
  return nock('https://api.github.com', {
    reqheaders: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  })
    .get('/repos/owner/secret')
    .reply(200, { full_name: 'owner/secret', private: true, visibility: 'private' })
    .get(`/repos/owner/secret/commits/${ref}`)
    .optionally()
    .reply(200, SHA);
}

describe('a private GitHub repository that GITHUB_TOKEN can read', () => {
  const config = loadConfig({ GITHUB_TOKEN: OPERATOR_TOKEN });

  it.each(['main', 'HEAD', SHA])(
    'is refused with a sentence for an anonymous launch of gh/owner/secret/%s, its prebuilt image untouched',
    async (ref) => {
      const github = githubWithPrivateRepository(ref);
      const { engine, asked } = engineWithEveryImage();
      const builder = new Builder({ engine, config, lookup });
      const attempt = builder.build(parseSpec('gh', `owner/secret/${ref}`));
      await expect(attempt).rejects.toThrow(ForbiddenError);
      await expect(attempt).rejects.toThrow(
        'owner/secret is a private repository on GitHub; Bindery launches public repositories only, so that a link never shows code its visitor cannot read. Make the repository public to launch it here.',
      );
      expect(asked).toEqual([]);
      expect(github.isDone()).toBe(true);
    },
  );

  it('is refused with the app installation token too', async () => {
    nock('https://api.github.com', { reqheaders: { authorization: 'Bearer ghs_installation' } })
      .get('/repos/owner/secret')
      .reply(200, { private: true, visibility: 'private' })
      .get('/repos/owner/secret/commits/main')
      .optionally()
      .reply(200, SHA);
    const { engine, asked } = engineWithEveryImage();
    const builder = new Builder({
      engine,
      config,
      lookup,
      githubToken: async () => 'ghs_installation',
    });
    await expect(builder.build(parseSpec('gh', 'owner/secret/main'))).rejects.toThrow(
      ForbiddenError,
    );
    expect(asked).toEqual([]);
  });

  it('an internal (enterprise-visible) repository is refused the same way', async () => {
    nock('https://api.github.com')
      .get('/repos/corp/tools')
      .reply(200, { private: false, visibility: 'internal' })
      .get('/repos/corp/tools/commits/main')
      .optionally()
      .reply(200, SHA);
    const builder = new Builder({ engine: engineWithEveryImage().engine, config, lookup });
    await expect(builder.resolve(parseSpec('gh', 'corp/tools/main'))).rejects.toThrow(
      /corp\/tools is a private repository on GitHub/,
    );
  });

  it('a public repository still launches from its prebuilt image', async () => {
    nock('https://api.github.com')
      .get('/repos/owner/open')
      .reply(200, { private: false, visibility: 'public' })
      .get('/repos/owner/open/commits/main')
      .reply(200, SHA);
    const { engine, asked } = engineWithEveryImage();
    const builder = new Builder({ engine, config, lookup });
    const result = await builder.build(parseSpec('gh', 'owner/open/main'));
    expect(result).toMatchObject({ cached: true, ref: SHA });
    expect(asked).toHaveLength(1);
  });
});
