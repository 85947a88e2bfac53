import { afterAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { BuildError } from '../../src/errors.js';
import { parseSource } from '../../src/repos/repo-spec.js';

/**
 * The memory limit of build steps is enforced, not only written in the cgroup (which
 * build-limits.test.ts reads): a postBuild that touches more than BINDERY_SESSION_MEMORY is
 * killed and the build fails, while the same step under the limit builds.
 */
const exec = promisify(execFile);
const prefix = `bindery-test/m${randomBytes(4).toString('hex')}-`;
const engine = new DockerEngine();
const dirs: string[] = [];

/** A repository whose postBuild fills `mebibytes` MiB of memory (every page written). */
async function repoTouching(mebibytes: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bindery-memory-'));
  dirs.push(dir);
  await writeFile(
    join(dir, 'postBuild'),
    `#!/bin/sh\npython3 -c "data = b'x' * (${mebibytes} << 20); print('filled', len(data) >> 20, 'MiB')"\n`,
  );
  return dir;
}

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(image);
  }
}, 60_000);

describe('the memory limit of build steps', () => {
  const builder = new Builder({
    engine,
    config: loadConfig({ BINDERY_IMAGE_PREFIX: prefix, BINDERY_SESSION_MEMORY: '256m' }),
  });

  test('a step under the limit builds', async () => {
    let log = '';
    await builder.build(parseSource(await repoTouching(128)), {
      onEvent: (event) => (log += event.message),
    });
    expect(log).toMatch(/^filled 128 MiB$/m);
  }, 300_000);

  test('a step past the limit is killed by the kernel and the build fails', async () => {
    let log = '';
    const error = await builder
      .build(parseSource(await repoTouching(384)), { onEvent: (event) => (log += event.message) })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BuildError);
    // SIGKILL from the OOM killer: the shell reports 137.
    expect((error as Error).message).toMatch(/returned a non-zero code: 137/);
    expect(log).not.toMatch(/^filled/m);
  }, 300_000);
});
