import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  contextIgnorePatterns,
  hashDirectory,
  packBuildContext,
  RENDERED_DOCKERFILE,
} from '../../src/build/build-context.js';
import { readRepoConfig } from '../../src/build/repo-config.js';
import { RepositoryError } from '../../src/errors.js';

let repo: string;
let scratch: string;

beforeEach(async () => {
  repo = await mkdtemp(join(tmpdir(), 'bindery-context-'));
  scratch = await mkdtemp(join(tmpdir(), 'bindery-context-tar-'));
});

afterEach(async () => {
  await rm(repo, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

/** Writes `files` (path → content) under the test repository. */
async function write(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), content);
  }
}

const RENDERED = 'FROM bindery/base\nCOPY . /home/jovyan/\n';

/**
 * Packs the test repository as the builder would, with RENDERED as the rendered Dockerfile
 * unless `ownDockerfile`, and returns the tar file's path.
 */
async function packed(ownDockerfile = false): Promise<string> {
  const archive = join(scratch, 'context.tar');
  const config = await readRepoConfig(repo);
  const context = await packBuildContext(repo, config, ownDockerfile ? undefined : RENDERED);
  await pipeline(context, createWriteStream(archive));
  return archive;
}

/** Every entry name in the tar, as GNU tar lists it. */
const entries = (archive: string) =>
  execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).split('\n').filter(Boolean);

/** What the daemon's untar would leave at `name`: every member of that name, in order. */
const contentOf = (archive: string, name: string) =>
  execFileSync('tar', ['-xOf', archive, name], { encoding: 'utf8' });

describe('packBuildContext with a rendered Dockerfile', () => {
  it("applies the root .dockerignore and puts only Bindery's own .dockerignore in the tar", async () => {
    await write({
      '.dockerignore': '# big things\ndata/\n*.log\n',
      'notebook.ipynb': '{}',
      'data/big.csv': 'x',
      'run.log': 'x',
      'src/analysis.py': 'print(1)\n',
    });
    const archive = await packed();
    expect(entries(archive).sort()).toEqual([
      '.bindery.Dockerfile',
      '.dockerignore',
      'notebook.ipynb',
      'src',
      'src/analysis.py',
    ]);
    // One member, ours: the daemon drops it and the rendered Dockerfile, and nothing else.
    expect(contentOf(archive, '.dockerignore')).toBe(`${RENDERED_DOCKERFILE}\n.dockerignore\n`);
    expect(contentOf(archive, RENDERED_DOCKERFILE)).toBe(RENDERED);
  });

  it("replaces a repository's own .bindery.Dockerfile rather than adding a second one", async () => {
    await write({ [RENDERED_DOCKERFILE]: 'FROM evil\n', 'a.txt': 'a' });
    const archive = await packed();
    expect(entries(archive).filter((name) => name === RENDERED_DOCKERFILE)).toHaveLength(1);
    expect(contentOf(archive, RENDERED_DOCKERFILE)).toBe(RENDERED);
  });

  it('takes the rules from binder/ when it exists, .dockerignore and .containerignore together', async () => {
    await write({
      'binder/.dockerignore': 'secret.txt\n',
      'binder/.containerignore': 'scratch/\n',
      'binder/requirements.txt': 'numpy\n',
      '.dockerignore': 'notebook.ipynb\n',
      'notebook.ipynb': '{}',
      'secret.txt': 'x',
      'scratch/tmp.bin': 'x',
    });
    expect(entries(await packed()).sort()).toEqual([
      '.bindery.Dockerfile',
      '.dockerignore',
      'binder',
      'binder/.containerignore',
      'binder/.dockerignore',
      'binder/requirements.txt',
      'notebook.ipynb',
    ]);
  });

  it('reads .containerignore at the root too, after .dockerignore', async () => {
    await write({
      '.dockerignore': '*.csv\n',
      '.containerignore': '!keep.csv\n',
      'keep.csv': 'x',
      'drop.csv': 'x',
    });
    expect(entries(await packed())).toContain('keep.csv');
    expect(entries(await packed())).not.toContain('drop.csv');
  });

  it('re-includes a file inside an excluded directory, without the directory entry, as docker-py does', async () => {
    await write({
      '.dockerignore': 'data\n!data/keep.csv\n',
      'data/keep.csv': 'x',
      'data/drop.csv': 'x',
      'data/deep/drop.csv': 'x',
    });
    const names = entries(await packed());
    expect(names).toContain('data/keep.csv');
    expect(names.filter((name) => name.startsWith('data'))).toEqual(['data/keep.csv']);
  });

  it('matches without regard to case, as docker-py does', async () => {
    await write({ '.dockerignore': '*.LOG\n', 'run.log': 'x', 'a.txt': 'a' });
    expect(entries(await packed())).not.toContain('run.log');
  });

  it('keeps a root Dockerfile that the rules exclude, as docker-py does for repo2docker', async () => {
    await write({ 'binder/.dockerignore': 'Dockerfile\n', Dockerfile: 'FROM x\n' });
    expect(entries(await packed())).toContain('Dockerfile');
  });

  it('packs links as links and leaves out named pipes', async () => {
    await write({ 'a.txt': 'a' });
    await symlink('/etc', join(repo, 'etc-link'));
    execFileSync('mkfifo', [join(repo, 'pipe')]);
    const listing = execFileSync('tar', ['-tvf', await packed()], { encoding: 'utf8' });
    expect(listing).toMatch(/^l.* etc-link -> \/etc$/m);
    expect(listing).not.toContain('pipe');
    expect(listing).not.toContain('passwd');
  });

  it('packs an empty context when the rules leave out everything', async () => {
    await write({ '.dockerignore': '*\n', 'a.txt': 'a' });
    expect(entries(await packed()).sort()).toEqual(['.bindery.Dockerfile', '.dockerignore']);
  });
});

describe("packBuildContext for a repository's own Dockerfile", () => {
  it('applies and keeps the root .dockerignore, and always sends the Dockerfile', async () => {
    await write({
      Dockerfile: 'FROM x\n',
      '.dockerignore': 'Dockerfile\n.dockerignore\n*.csv\n',
      'a.csv': 'x',
      'b.txt': 'b',
    });
    const archive = await packed(true);
    // The daemon itself then drops both files, which this root .dockerignore names.
    expect(entries(archive).sort()).toEqual(['.dockerignore', 'Dockerfile', 'b.txt']);
    expect(contentOf(archive, '.dockerignore')).toBe('Dockerfile\n.dockerignore\n*.csv\n');
  });

  it('uses the root .dockerignore for binder/Dockerfile, as docker-py does for repo2docker', async () => {
    await write({
      'binder/Dockerfile': 'FROM x\n',
      'binder/.dockerignore': 'a.txt\n',
      '.dockerignore': 'binder\nb.txt\n',
      'a.txt': 'a',
      'b.txt': 'b',
    });
    expect(entries(await packed(true)).sort()).toEqual([
      '.dockerignore',
      'a.txt',
      'binder/Dockerfile',
    ]);
  });
});

describe('contextIgnorePatterns', () => {
  it('combines .dockerignore and .containerignore of the config directory, in that order', async () => {
    await write({ 'binder/.dockerignore': 'a\n#c\n\n  b  \n', 'binder/.containerignore': '!c\n' });
    expect(await contextIgnorePatterns(repo, await readRepoConfig(repo))).toEqual([
      'a',
      'b',
      '!c',
      '!Dockerfile',
      '!.dockerignore',
    ]);
  });

  it('refuses a root .dockerignore that is a named pipe for binder/Dockerfile, never opening it', async () => {
    await write({ 'binder/Dockerfile': 'FROM x\n' });
    execFileSync('mkfifo', [join(repo, '.dockerignore')]);
    const error = await contextIgnorePatterns(repo, await readRepoConfig(repo)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RepositoryError);
    expect((error as Error).message).toBe(
      '.dockerignore is a named pipe, not a regular file; replace it with a text file.',
    );
  });

  it('refuses a root .dockerignore that leads outside the repository', async () => {
    await write({ 'binder/Dockerfile': 'FROM x\n' });
    await symlink('/etc/hostname', join(repo, '.dockerignore'));
    await expect(contextIgnorePatterns(repo, await readRepoConfig(repo))).rejects.toThrow(
      '.dockerignore is a symbolic link that leads outside the repository',
    );
  });
});

describe('hashDirectory', () => {
  it('gives the same hash for the same files, and another when a packed file changes', async () => {
    await write({ 'requirements.txt': 'numpy\n', 'notebook.ipynb': '{}' });
    const first = await hashDirectory(repo);
    expect(await hashDirectory(repo)).toBe(first);
    await write({ 'notebook.ipynb': '{"cells": []}' });
    expect(await hashDirectory(repo)).not.toBe(first);
  });

  it('ignores changes to files the build context leaves out', async () => {
    await write({ 'binder/.dockerignore': 'scratch/\n', 'scratch/a': '1', 'b.txt': 'b' });
    const first = await hashDirectory(repo);
    await write({ 'scratch/a': '2', 'scratch/new': 'x' });
    expect(await hashDirectory(repo)).toBe(first);
  });

  it('follows the config directory’s rules, not a root .dockerignore beside binder/', async () => {
    await write({ 'binder/apt.txt': 'curl\n', '.dockerignore': 'notes.md\n', 'notes.md': '1' });
    const first = await hashDirectory(repo);
    await write({ 'notes.md': '2' });
    expect(await hashDirectory(repo)).not.toBe(first);
  });

  it('changes when an executable bit changes', async () => {
    await write({ postBuild: '#!/bin/sh\n' });
    const first = await hashDirectory(repo);
    await chmod(join(repo, 'postBuild'), 0o755);
    expect(await hashDirectory(repo)).not.toBe(first);
  });

  it('changes when a configuration file the context leaves out changes, since the build reads it', async () => {
    await write({ '.dockerignore': 'apt.txt\n', 'apt.txt': 'curl\n' });
    const first = await hashDirectory(repo);
    await write({ 'apt.txt': 'wget\n' });
    expect(await hashDirectory(repo)).not.toBe(first);
  });

  it("fails with the system's reason for a directory that is not there", async () => {
    await expect(hashDirectory(join(repo, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a repository whose configuration cannot be read', async () => {
    await mkdir(join(repo, 'binder'));
    await mkdir(join(repo, '.binder'));
    await expect(hashDirectory(repo)).rejects.toBeInstanceOf(RepositoryError);
  });
});
