import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CONFIG_FILE_MAX_BYTES, configPath, readRepoConfig } from '../../src/build/repo-config.js';
import { RepositoryError } from '../../src/errors.js';

let repo: string;
const made: string[] = [];

beforeEach(async () => {
  repo = await mkdtemp(join(tmpdir(), 'bindery-repo-config-'));
  made.push(repo);
});

afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Writes `files` (path → content) under the test repository. */
async function write(files: Record<string, string | Buffer>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), content);
  }
}

/** The RepositoryError readRepoConfig rejects with; fails the test when it resolves. */
async function refusal(dir = repo): Promise<RepositoryError> {
  const error = await readRepoConfig(dir).then(
    () => {
      throw new Error('readRepoConfig accepted the repository');
    },
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(RepositoryError);
  expect((error as RepositoryError).status).toBe(422);
  return error as RepositoryError;
}

describe('readRepoConfig: where configuration is read from', () => {
  it('reads config files at the root when there is no binder directory', async () => {
    await write({
      'requirements.txt': 'numpy\n',
      'apt.txt': 'curl\n',
      'setup.py': 'from setuptools import setup\n',
      'notebook.ipynb': '{}',
      'README.md': '# hi',
    });
    expect(await readRepoConfig(repo)).toEqual({
      configDir: '',
      files: {
        'requirements.txt': 'numpy\n',
        'apt.txt': 'curl\n',
        'setup.py': 'from setuptools import setup\n',
      },
    });
  });

  it('reads every config file there is, by its bare name', async () => {
    const names = [
      'Dockerfile',
      'environment.yml',
      'Pipfile',
      'Pipfile.lock',
      'requirements.txt',
      'runtime.txt',
      'apt.txt',
      'postBuild',
      'start',
      'install.R',
      'Project.toml',
      'REQUIRE',
      'environment.yaml',
      '.dockerignore',
      '.containerignore',
      'setup.py',
      'pyproject.toml',
      'DESCRIPTION',
    ];
    await write(Object.fromEntries(names.map((name) => [name, `content of ${name}`])));
    const { files } = await readRepoConfig(repo);
    expect(Object.keys(files).sort()).toEqual([...names].sort());
    for (const name of names) expect(files[name as keyof typeof files]).toBe(`content of ${name}`);
  });

  it('reads only binder/ when it exists, ignoring config files at the root', async () => {
    await write({
      'binder/requirements.txt': 'from binder\n',
      'requirements.txt': 'from root\n',
      Dockerfile: 'FROM root\n',
      'environment.yml': 'name: root\n',
    });
    expect(await readRepoConfig(repo)).toEqual({
      configDir: 'binder',
      files: { 'requirements.txt': 'from binder\n' },
    });
  });

  it('ignores root-only setup.py, pyproject.toml and DESCRIPTION when a binder directory exists', async () => {
    await write({
      'binder/apt.txt': 'curl\n',
      'setup.py': 'x',
      'pyproject.toml': 'x',
      DESCRIPTION: 'Package: x',
    });
    expect((await readRepoConfig(repo)).files).toEqual({ 'apt.txt': 'curl\n' });
  });

  it('reads .dockerignore and .containerignore from binder/, not from the root', async () => {
    await write({
      'binder/.dockerignore': 'data/\n',
      'binder/.containerignore': '*.csv\n',
      '.dockerignore': 'root rules\n',
    });
    expect(await readRepoConfig(repo)).toEqual({
      configDir: 'binder',
      files: { '.dockerignore': 'data/\n', '.containerignore': '*.csv\n' },
    });
  });

  it('reads environment.yaml beside environment.yml, leaving the choice to detection', async () => {
    await write({ 'environment.yml': 'a', 'environment.yaml': 'b' });
    expect((await readRepoConfig(repo)).files).toEqual({
      'environment.yml': 'a',
      'environment.yaml': 'b',
    });
  });

  it('does not look for root-only files inside binder/', async () => {
    await write({ 'binder/setup.py': 'x', 'binder/DESCRIPTION': 'x' });
    expect(await readRepoConfig(repo)).toEqual({ configDir: 'binder', files: {} });
  });

  it('reads .binder/ the same way', async () => {
    await write({ '.binder/postBuild': '#!/bin/sh\n', postBuild: 'root one' });
    expect(await readRepoConfig(repo)).toEqual({
      configDir: '.binder',
      files: { postBuild: '#!/bin/sh\n' },
    });
  });

  it('uses an empty binder/ directory, so root files are ignored', async () => {
    await mkdir(join(repo, 'binder'));
    await write({ 'requirements.txt': 'numpy' });
    expect(await readRepoConfig(repo)).toEqual({ configDir: 'binder', files: {} });
  });

  it('reads the root when binder is a file, not a directory', async () => {
    await write({ binder: 'not a directory', 'requirements.txt': 'numpy' });
    expect(await readRepoConfig(repo)).toEqual({
      configDir: '',
      files: { 'requirements.txt': 'numpy' },
    });
  });

  it('refuses both binder/ and .binder/, saying how to fix it', async () => {
    await write({ 'binder/requirements.txt': 'a', '.binder/requirements.txt': 'b' });
    expect((await refusal()).message).toBe(
      'The repository has both binder/ and .binder/; Bindery reads configuration from one of them. Merge them into one directory.',
    );
  });

  it('refuses a repository directory that does not exist', async () => {
    const missing = join(repo, 'missing');
    expect((await refusal(missing)).message).toBe(`${missing} is not a directory.`);
  });

  it('refuses a repository path that is a file', async () => {
    await write({ file: 'x' });
    expect((await refusal(join(repo, 'file'))).message).toBe(
      `${join(repo, 'file')} is not a directory.`,
    );
  });
});

describe('readRepoConfig: what counts as a config file', () => {
  it('reads a file of exactly 1 MiB', async () => {
    await write({ 'requirements.txt': 'a'.repeat(CONFIG_FILE_MAX_BYTES) });
    expect((await readRepoConfig(repo)).files['requirements.txt']).toHaveLength(
      CONFIG_FILE_MAX_BYTES,
    );
  });

  it('refuses a config file over 1 MiB, naming the file and the limit', async () => {
    await write({ 'binder/environment.yml': 'a'.repeat(3 * 2 ** 20) });
    expect((await refusal()).message).toBe(
      'binder/environment.yml is 3 MiB; configuration files must be under 1 MiB.',
    );
  });

  it('refuses a directory where a file is expected', async () => {
    await mkdir(join(repo, 'binder', 'requirements.txt'), { recursive: true });
    expect((await refusal()).message).toBe(
      'binder/requirements.txt is a directory; Bindery expects a file there.',
    );
  });

  it('refuses a named pipe without opening it, which would wait for a writer forever', async () => {
    execFileSync('mkfifo', [join(repo, 'apt.txt')]);
    expect((await refusal()).message).toBe(
      'apt.txt is a named pipe, not a regular file; replace it with a text file.',
    );
  });

  it('refuses a named pipe as an ignore file of the config directory', async () => {
    await mkdir(join(repo, 'binder'));
    execFileSync('mkfifo', [join(repo, 'binder', '.dockerignore')]);
    expect((await refusal()).message).toBe(
      'binder/.dockerignore is a named pipe, not a regular file; replace it with a text file.',
    );
  });

  it('refuses a device, such as a copy of /dev/zero, without reading it', async () => {
    execFileSync('mknod', [join(repo, '.containerignore'), 'c', '1', '5']);
    expect((await refusal()).message).toBe(
      '.containerignore is a character device, not a regular file; replace it with a text file.',
    );
  });

  it('refuses a link inside the repository that leads to a named pipe, naming the pipe', async () => {
    execFileSync('mkfifo', [join(repo, 'pipe')]);
    await symlink('pipe', join(repo, '.dockerignore'));
    expect((await refusal()).message).toBe(
      'pipe is a named pipe, not a regular file; replace it with a text file.',
    );
  });

  it('refuses a file with a NUL byte as not UTF-8 text', async () => {
    await write({ 'binder/apt.txt': Buffer.from('curl\0\n') });
    expect((await refusal()).message).toBe('binder/apt.txt is not a UTF-8 text file.');
  });

  it('refuses invalid UTF-8 as not UTF-8 text', async () => {
    await write({ 'requirements.txt': Buffer.from([0x6e, 0x75, 0x6d, 0xff, 0xfe, 0x0a]) });
    expect((await refusal()).message).toBe('requirements.txt is not a UTF-8 text file.');
  });

  it('reads valid UTF-8 that is not ASCII, a real U+FFFD included', async () => {
    const text = '# Abhängigkeiten für die Übung: numpy ≥ 1.26 �\nnumpy\n';
    await write({ 'requirements.txt': text });
    expect((await readRepoConfig(repo)).files['requirements.txt']).toBe(text);
  });
});

describe('readRepoConfig: symbolic links', () => {
  it('refuses a link to a file outside the repository, such as /etc/passwd', async () => {
    await mkdir(join(repo, 'binder'));
    await symlink('/etc/passwd', join(repo, 'binder', 'requirements.txt'));
    const error = await refusal();
    expect(error.message).toBe(
      'binder/requirements.txt is a symbolic link that leads outside the repository; replace it with the file itself.',
    );
    expect(error.message).not.toContain('root:');
  });

  it('refuses a relative link that climbs out of the repository', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'bindery-outside-'));
    made.push(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret\n');
    await symlink(join('..', outside.split('/').at(-1)!, 'secret.txt'), join(repo, 'apt.txt'));
    expect((await refusal()).message).toContain(
      'apt.txt is a symbolic link that leads outside the repository',
    );
  });

  it("refuses a link to a sibling directory whose name starts like the repository's", async () => {
    const sibling = `${repo}-evil`;
    made.push(sibling);
    await mkdir(sibling);
    await writeFile(join(sibling, 'apt.txt'), 'curl\n');
    await symlink(join(sibling, 'apt.txt'), join(repo, 'apt.txt'));
    expect((await refusal()).message).toContain('leads outside the repository');
  });

  it('refuses a link to the repository directory itself', async () => {
    await symlink('.', join(repo, 'requirements.txt'));
    expect((await refusal()).message).toContain(
      'requirements.txt is a symbolic link that leads outside',
    );
  });

  it('refuses a dangling link', async () => {
    await symlink('nowhere.txt', join(repo, 'requirements.txt'));
    expect((await refusal()).message).toContain('requirements.txt is a symbolic link');
  });

  it('follows a link to a file inside the repository', async () => {
    await write({ 'envs/requirements-binder.txt': 'pandas\n' });
    await mkdir(join(repo, 'binder'));
    await symlink('../envs/requirements-binder.txt', join(repo, 'binder', 'requirements.txt'));
    expect(await readRepoConfig(repo)).toEqual({
      configDir: 'binder',
      files: { 'requirements.txt': 'pandas\n' },
    });
  });

  it('follows a link inside the repository to a file whose name starts with two dots', async () => {
    await write({ '..requirements.txt': 'numpy\n' });
    await symlink('..requirements.txt', join(repo, 'requirements.txt'));
    expect((await readRepoConfig(repo)).files['requirements.txt']).toBe('numpy\n');
  });

  it('follows an absolute link into the repository, and checks what it finds there', async () => {
    await write({ 'big.txt': 'a'.repeat(CONFIG_FILE_MAX_BYTES + 1) });
    await symlink(join(repo, 'big.txt'), join(repo, 'requirements.txt'));
    expect((await refusal()).message).toBe(
      'big.txt is 1.0 MiB; configuration files must be under 1 MiB.',
    );
  });

  it('reads a repository named by a link to it, and still checks the links inside', async () => {
    await write({ 'requirements.txt': 'numpy\n' });
    const link = `${repo}-link`;
    made.push(link);
    await symlink(repo, link);
    expect(await readRepoConfig(link)).toEqual({
      configDir: '',
      files: { 'requirements.txt': 'numpy\n' },
    });
    await symlink('/etc/passwd', join(repo, 'apt.txt'));
    expect((await refusal(link)).message).toContain(
      'apt.txt is a symbolic link that leads outside',
    );
  });

  it('does not take a binder directory that is a link, which could lead anywhere', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'bindery-outside-'));
    made.push(outside);
    await writeFile(join(outside, 'requirements.txt'), 'from outside\n');
    await symlink(outside, join(repo, 'binder'));
    await write({ 'requirements.txt': 'from root\n' });
    expect(await readRepoConfig(repo)).toEqual({
      configDir: '',
      files: { 'requirements.txt': 'from root\n' },
    });
  });
});

describe('configPath', () => {
  it('puts config files under the config directory and root-only files at the root', () => {
    const config = { configDir: 'binder', files: {} };
    expect(configPath(config, 'requirements.txt')).toBe('binder/requirements.txt');
    expect(configPath(config, 'setup.py')).toBe('setup.py');
    expect(configPath({ configDir: '', files: {} }, 'postBuild')).toBe('postBuild');
  });
});
