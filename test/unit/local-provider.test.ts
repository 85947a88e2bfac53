import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashDirectory } from '../../src/build/build-context.js';
import { loadConfig } from '../../src/config.js';
import { RepositoryError } from '../../src/errors.js';
import { localProvider } from '../../src/repos/providers/local-provider.js';

describe('local directories', () => {
  it.each([
    ['/srv/notebooks', '/srv/notebooks', 'local-notebooks'],
    ['/', '/', 'local-root'],
    ['relative/dir', resolve('relative/dir'), 'local-dir'],
  ])('%s is the directory %s, slug %s', (arg, path, buildSlug) => {
    expect(localProvider.parseSpec(arg)).toEqual({
      provider: 'local',
      url: path,
      ref: 'local',
      buildSlug,
      repoLabel: `local/${path}`,
    });
  });

  it('is not launched by URL', () => {
    expect(localProvider.launchable).toBe(false);
  });

  it('links the directory itself', () => {
    const spec = localProvider.parseSpec('/srv/notebooks');
    expect(localProvider.repoUrl(spec)).toBe('/srv/notebooks');
    expect(localProvider.refUrl(spec, 'abc')).toBe('/srv/notebooks');
    expect(localProvider.banSubjects(spec)).toEqual([
      'local//srv/notebooks/local',
      'local//srv/notebooks/local',
    ]);
  });
});

describe('a local directory’s ref, its content hash', () => {
  let dir: string;
  const config = loadConfig({});
  const resolveDir = (path: string) =>
    localProvider.resolveRef(localProvider.parseSpec(path), { config, hashDirectory });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bindery-local-provider-'));
    await writeFile(join(dir, 'requirements.txt'), 'numpy\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is the same for the same files and changes with them', async () => {
    const first = await resolveDir(dir);
    expect(first).toMatch(/^[0-9a-f]{40}$/);
    await expect(resolveDir(dir)).resolves.toBe(first);
    await writeFile(join(dir, 'requirements.txt'), 'pandas\n');
    await expect(resolveDir(dir)).resolves.not.toBe(first);
  });

  it('is refused with the reason for a directory that is not there', async () => {
    const missing = join(dir, 'missing');
    const attempt = resolveDir(missing);
    await expect(attempt).rejects.toThrow(RepositoryError);
    await expect(attempt).rejects.toThrow(`${missing} cannot be read as a directory (ENOENT).`);
  });
});
