/**
 * The session limits under gVisor (BINDERY_RUNTIME=runsc). gVisor runs a session's processes
 * inside one sandbox on the host, and the host's cgroups limit that sandbox as a whole: a
 * session that exceeds them ends, and only that session.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import {
  startSession,
  waitForJupyter,
  type StartedSession,
} from '../../src/sessions/start-session.js';

const exec = promisify(execFile);
const config = loadConfig({
  BINDERY_IMAGE_PREFIX: `bindery-test/g${randomBytes(4).toString('hex')}-`,
  BINDERY_RUNTIME: 'runsc',
});
const engine = new DockerEngine();
let imageName: string;
const sessions: StartedSession[] = [];

async function start(): Promise<StartedSession> {
  const session = await startSession({
    engine,
    config,
    imageName,
    repoLabel: 'test/runsc',
    publishOn: '127.0.0.1',
  });
  sessions.push(session);
  await waitForJupyter(session.url, session.token, 60_000);
  return session;
}

/**
 * `docker exec` in the session; a non-zero exit is a result (-1: no exit status, as when the
 * sandbox is gone), with what the command wrote, so a test can tell a limit's refusal from an
 * exec that failed for another reason.
 */
async function inSession(session: StartedSession, args: string[], timeout = 60_000) {
  try {
    const { stdout, stderr } = await exec('docker', ['exec', session.container.id, ...args], {
      timeout,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

async function inspect(session: StartedSession) {
  const { stdout } = await exec('docker', [
    'inspect',
    '-f',
    '{{json .State}}',
    session.container.id,
  ]);
  return JSON.parse(stdout) as {
    Running: boolean;
    Pid: number;
    ExitCode: number;
    OOMKilled: boolean;
  };
}

/** The sandbox's cgroup (v1) directory of `controller` on the host. */
async function hostCgroup(session: StartedSession, controller: string): Promise<string> {
  const { Pid } = await inspect(session);
  const line = (await readFile(`/proc/${Pid}/cgroup`, 'utf8'))
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes(controller));
  return `/sys/fs/cgroup/${controller}${line!.split(':')[2]}`;
}
const readNumber = async (file: string) => Number((await readFile(file, 'utf8')).trim());

const answers = async (session: StartedSession) =>
  fetch(`${session.url}api/status?token=${session.token}`, {
    signal: AbortSignal.timeout(5_000),
  }).then(
    (response) => response.ok,
    () => false,
  );

/** Waits until the session's container has stopped, or `ms` pass. */
async function stopped(session: StartedSession, ms: number) {
  const deadline = Date.now() + ms;
  let state = await inspect(session);
  while (state.Running && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    state = await inspect(session);
  }
  return state;
}

beforeAll(async () => {
  ({ imageName } = await new Builder({ engine, config }).build(
    parseSource(join(import.meta.dirname, '../fixtures/repos/default')),
  ));
}, 300_000);

afterAll(async () => {
  for (const session of sessions) await engine.removeContainer(session.container.id);
  if (imageName) await engine.removeImage(imageName);
}, 60_000);

describe('a session under gVisor', () => {
  test('runs under runsc as uid 1000 with no capabilities, and cannot become root', async () => {
    const session = await start();
    const { stdout } = await exec('docker', [
      'inspect',
      '-f',
      '{{.HostConfig.Runtime}}',
      session.container.id,
    ]);
    expect(stdout.trim()).toBe('runsc');
    expect((await inSession(session, ['id', '-u'])).stdout.trim()).toBe('1000');
    expect((await inSession(session, ['grep', 'CapEff', '/proc/self/status'])).stdout).toMatch(
      /^CapEff:\s+0+$/m,
    );
    // Refused by the kernel (gVisor's), not an exec that failed: Python says why.
    const setuid = await inSession(session, ['python3', '-c', 'import os; os.setuid(0)']);
    expect(setuid.code).toBe(1);
    expect(setuid.stderr).toContain('PermissionError: [Errno 1] Operation not permitted');
  }, 120_000);

  test('is held to one CPU and 1 GiB without swap by the host', async () => {
    const session = sessions[0]!;
    const cpu = await hostCgroup(session, 'cpu');
    expect(await readNumber(`${cpu}/cpu.cfs_quota_us`)).toBe(
      await readNumber(`${cpu}/cpu.cfs_period_us`),
    );
    const memory = await hostCgroup(session, 'memory');
    expect(await readNumber(`${memory}/memory.limit_in_bytes`)).toBe(2 ** 30);
    expect(await readNumber(`${memory}/memory.memsw.limit_in_bytes`)).toBe(2 ** 30);
  }, 60_000);

  test('writing 2 GiB gets the session OOM-killed, and only that session', async () => {
    const victim = await start();
    const bystander = await start();
    // The exec never returns once its sandbox is gone; the container's state says what happened.
    void inSession(
      victim,
      ['python3', '-c', 'b = b"x" * (2 * 1024**3); print("allocated")'],
      30_000,
    );
    const state = await stopped(victim, 60_000);
    expect(state).toMatchObject({ Running: false, OOMKilled: true });
    expect(await answers(bystander)).toBe(true);
  }, 180_000);

  test('a fork bomb ends at the pids limit with its own session; another keeps answering', async () => {
    const victim = await start();
    const bystander = await start();
    const pids = await hostCgroup(victim, 'pids');
    expect(await readNumber(`${pids}/pids.max`)).toBe(config.session.pidsLimit);
    const bomb = 'import os\nwhile True:\n    os.fork()\n';
    void inSession(victim, ['timeout', '20', 'python3', '-c', bomb], 40_000);
    // The sandbox's pids cgroup on the host, read until it goes with the sandbox: how often
    // the kernel refused a fork there (pids.events `max`), and the most processes seen.
    let refused = 0;
    let highest = 0;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        const events = await readFile(`${pids}/pids.events`, 'utf8');
        refused = Number(/^max (\d+)$/m.exec(events)?.[1]);
        highest = Math.max(highest, await readNumber(`${pids}/pids.current`));
      } catch {
        break; // The cgroup is gone: so is the sandbox.
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const state = await stopped(victim, 10_000);
    // It ended, and because of the pids limit: never past it, not by the memory limit, and at
    // it: forks were refused there, or, when the sandbox ended at the first refusal and its
    // cgroup went before the next read, the count was last seen near the limit (another
    // limit, or an exec that failed, would show neither).
    expect(state.Running).toBe(false);
    expect(state.OOMKilled).toBe(false);
    expect(highest).toBeLessThanOrEqual(config.session.pidsLimit);
    if (refused === 0) expect(highest).toBeGreaterThanOrEqual(config.session.pidsLimit * 0.9);
    expect(await answers(bystander)).toBe(true);
  }, 180_000);
});
