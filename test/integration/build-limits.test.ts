import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
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

const exec = promisify(execFile);
const prefix = `bindery-test/l${randomBytes(4).toString('hex')}-`;
const engine = new DockerEngine();
const dirs: string[] = [];

/** A repository of the test's own whose postBuild is `script`. */
async function repoWithPostBuild(script: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bindery-limits-'));
  dirs.push(dir);
  await writeFile(join(dir, 'postBuild'), `#!/bin/sh\n${script}\n`);
  return dir;
}

async function ourImages(): Promise<string[]> {
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  return stdout.split('\n').filter((name) => name.startsWith(prefix));
}

/** Built images: not the `…:failed-<ref>` names a stopped build's layers are kept under. */
async function builtImages(): Promise<string[]> {
  return (await ourImages()).filter((name) => !/:failed-/.test(name));
}

/** Host processes whose command line contains `marker` (a container's processes are visible). */
async function processesWith(marker: string): Promise<string[]> {
  const { stdout } = await exec('ps', ['-eo', 'args']);
  return stdout.split('\n').filter((line) => line.includes(marker) && !line.includes('ps -eo'));
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

afterAll(async () => {
  for (const image of await ourImages()) await engine.removeImage(image);
}, 60_000);

describe('build limits', () => {
  test('a build past BINDERY_BUILD_TIMEOUT is stopped, its steps killed, and no image made', async () => {
    // A sleep no other process on this machine has: its presence is the build still running.
    const marker = `${(Math.random() * 1000 + 600).toFixed(3)}`;
    const dir = await repoWithPostBuild(`echo started; sleep ${marker}`);
    const builder = new Builder({
      engine,
      config: loadConfig({ BINDERY_IMAGE_PREFIX: prefix, BINDERY_BUILD_TIMEOUT: '4' }),
    });
    const started = Date.now();
    const attempt = builder.build(parseSource(dir));
    await expect(attempt).rejects.toThrow(BuildError);
    await expect(attempt).rejects.toThrow(/took longer than 4 s, this service's limit/);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await builtImages()).toEqual([]);

    const deadline = Date.now() + 15_000;
    while ((await processesWith(`sleep ${marker}`)).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(await processesWith(`sleep ${marker}`)).toEqual([]);
  }, 60_000);

  test('a build that prints more than BINDERY_BUILD_LOG_MAX is stopped', async () => {
    const dir = await repoWithPostBuild('yes "all work and no play" | head -c 3000000');
    const builder = new Builder({
      engine,
      config: loadConfig({ BINDERY_IMAGE_PREFIX: prefix, BINDERY_BUILD_LOG_MAX: '200k' }),
    });
    let logged = 0;
    const attempt = builder.build(parseSource(dir), {
      onEvent: (event) => (logged += event.phase === 'building' ? event.message.length : 0),
    });
    await expect(attempt).rejects.toThrow(/printed more than 200 KiB of log, this service's limit/);
    // Nothing past the limit reached the listener (the first event is Bindery's own header).
    expect(logged).toBeLessThanOrEqual(200 * 1024 + 200);
    expect(await builtImages()).toEqual([]);
  }, 60_000);

  test('build steps run with the pids, CPU and memory limits of sessions', async () => {
    // 1,500 sleeping children; past the pids limit a fork fails and the loop goes on.
    const marker = `${(Math.random() * 1000 + 2000).toFixed(3)}`;
    const dir = await repoWithPostBuild(
      [
        "python3 - <<'PY'",
        'import os, signal, time',
        'children = []',
        'for _ in range(1500):',
        '    try:',
        '        pid = os.fork()',
        '    except OSError:',
        '        continue',
        '    if pid == 0:',
        `        time.sleep(${marker})`,
        '        os._exit(0)',
        '    children.append(pid)',
        'print("processes:", len([p for p in os.listdir("/proc") if p.isdigit()]), flush=True)',
        'for pid in children:',
        '    os.kill(pid, signal.SIGKILL)',
        '    os.waitpid(pid, 0)',
        'PY',
        'echo "memory: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"',
        'echo "cpu: $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"',
      ].join('\n'),
    );
    const builder = new Builder({
      engine,
      config: loadConfig({ BINDERY_IMAGE_PREFIX: prefix, BINDERY_PIDS_LIMIT: '100' }),
    });
    let log = '';
    await builder.build(parseSource(dir), { onEvent: (event) => (log += event.message) });
    const processes = Number(/^processes: (\d+)$/m.exec(log)?.[1]);
    expect(processes).toBeGreaterThan(10);
    expect(processes).toBeLessThanOrEqual(100);
    expect(log).toMatch(new RegExp(`^memory: ${2 ** 30}$`, 'm'));
    expect(log).toMatch(/^cpu: 100000\/100000$/m);
  }, 120_000);
});
