import { afterAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerEngine } from '../../src/engine/docker-engine.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const prefix = `bindery-test/c${randomBytes(4).toString('hex')}-`;
const engine = new DockerEngine();
const built: string[] = [];

/** Runs the `bindery` command as a person would; never throws, returns what it printed. */
async function bindery(...args: string[]) {
  try {
    const { stdout, stderr } = await exec(join(ROOT, 'bin/bindery.js'), args, {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', BINDERY_IMAGE_PREFIX: prefix },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

afterAll(async () => {
  for (const image of built) await engine.removeImage(image);
});

describe('the bindery command', () => {
  test('build prints the image name as its last line and the log on stderr', async () => {
    const { code, stdout, stderr } = await bindery('build', 'test/fixtures/repos/default');
    expect(code).toBe(0);
    const image = stdout.trim().split('\n').at(-1)!;
    built.push(image);
    expect(image).toMatch(new RegExp(`^${prefix}local-2ddefault-[0-9a-f]{6}:[0-9a-f]{40}$`));
    expect(await engine.imageExists(image)).toBe(true);
    expect(stderr).toMatch(/\[fetching\] Reading .*default/);
  }, 300_000);

  test('build --image tags the image with the name given', async () => {
    const name = `${prefix}named:v1`;
    const { code, stdout } = await bindery('build', 'test/fixtures/repos/default', '--image', name);
    built.push(name);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n').at(-1)).toBe(name);
    expect(await engine.imageExists(name)).toBe(true);
  }, 300_000);

  test('bad input gets one sentence and exit code 1, no stack trace', async () => {
    const missing = await bindery('build', '/no/such/repository');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(
      /^bindery: \/no\/such\/repository cannot be read as a directory/,
    );
    expect(missing.stderr).not.toMatch(/\n\s+at /);

    const ssh = await bindery('build', 'git@github.com:owner/repo.git');
    expect(ssh.code).toBe(1);
    expect(ssh.stderr).toContain('https://github.com/owner/repo.git');
  }, 60_000);

  test('no command prints the usage and exits 2', async () => {
    const { code, stderr } = await bindery();
    expect(code).toBe(2);
    expect(stderr).toContain('bindery build <path|url>');
  });
});
