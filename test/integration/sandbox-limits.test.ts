import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, type ExecFileException } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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
  BINDERY_IMAGE_PREFIX: `bindery-test/s${randomBytes(4).toString('hex')}-`,
});
const engine = new DockerEngine();
let imageName: string | undefined;
/** The session each test attacks from inside. */
let session: StartedSession;
/** A second session of the same image, which must not notice. */
let other: StartedSession;
const started: StartedSession[] = [];

beforeAll(async () => {
  const spec = parseSource(join(import.meta.dirname, '../fixtures/repos/default'));
  ({ imageName } = await new Builder({ engine, config }).build(spec));
  for (let i = 0; i < 2; i++) {
    const s = await startSession({
      engine,
      config,
      imageName,
      repoLabel: spec.repoLabel,
      publishOn: '127.0.0.1',
    });
    started.push(s);
    await waitForJupyter(s.url, s.token);
  }
  [session, other] = started as [StartedSession, StartedSession];
}, 300_000);

afterAll(async () => {
  for (const s of started) await engine.removeContainer(s.container.id);
  if (imageName) await engine.removeImage(imageName);
}, 60_000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * What `docker exec` itself says when it could not run the command at all (the daemon, the
 * runtime, a missing program): never a limit holding, so never a result.
 */
const EXEC_FAILED = /Error response from daemon|OCI runtime exec failed|executable file not found/;

/**
 * `docker exec` as the session's user (or `user`); a non-zero exit of the command is a result,
 * not an error, but an exec that did not run it throws, so no limit is taken to hold because
 * Docker failed.
 */
async function inSession(
  s: StartedSession,
  args: string[],
  options: { user?: string; timeoutMs?: number } = {},
): Promise<Run> {
  const user = options.user ? ['--user', options.user] : [];
  try {
    const { stdout, stderr } = await exec('docker', ['exec', ...user, s.container.id, ...args], {
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 16 * 2 ** 20,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as ExecFileException & { stdout: string; stderr: string };
    if (typeof failure.code !== 'number' || EXEC_FAILED.test(failure.stderr)) throw error;
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

/** When Jupyter started, from api/status with the token; undefined if it does not answer in 5 s. */
async function jupyterStarted(s: StartedSession): Promise<string | undefined> {
  const attempt = new AbortController();
  const timer = setTimeout(() => attempt.abort(), 5_000);
  try {
    const response = await fetch(`${s.url}api/status`, {
      headers: { Authorization: `token ${s.token}` },
      signal: attempt.signal,
    });
    return response.ok ? ((await response.json()) as { started: string }).started : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether Jupyter answers api/status with the token within 5 s. */
const answers = async (s: StartedSession) => (await jupyterStarted(s)) !== undefined;

interface ContainerState {
  Running: boolean;
  OOMKilled: boolean;
  Pid: number;
  StartedAt: string;
  RestartCount: number;
}

async function containerState(s: StartedSession): Promise<ContainerState> {
  const { stdout } = await exec('docker', [
    'inspect',
    '-f',
    '{{json .State}}\t{{.RestartCount}}',
    s.container.id,
  ]);
  const [state = '{}', restarts = ''] = stdout.trim().split('\t');
  return { ...(JSON.parse(state) as ContainerState), RestartCount: Number(restarts) };
}

/**
 * The session's cgroup (v1) directory of `controller`, read on the host. While the container
 * is at its pids limit a `docker exec` would not only fail to fork: the kernel never refuses
 * to move a process into a cgroup, so the exec itself is let in past pids.max and spoils
 * pids.peak. Reading on the host puts nothing in the container.
 */
async function hostCgroup(s: StartedSession, controller: string): Promise<string> {
  const { Pid } = await containerState(s);
  const cgroups = await readFile(`/proc/${Pid}/cgroup`, 'utf8');
  const line = cgroups.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (!line) throw new Error(`no ${controller} cgroup for ${s.container.name}`);
  return `/sys/fs/cgroup/${controller}${line.split(':')[2]}`;
}

const readNumber = async (file: string) => Number((await readFile(file, 'utf8')).trim());

/** The `oom_kill` count of memory.oom_control: processes the kernel killed for the limit. */
async function oomKills(s: StartedSession): Promise<number> {
  const text = await readFile(`${await hostCgroup(s, 'memory')}/memory.oom_control`, 'utf8');
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1]);
}

/** Starts a kernel through Jupyter's API (a new process in the container), then shuts it down. */
async function startsKernel(s: StartedSession): Promise<number> {
  const headers = { Authorization: `token ${s.token}`, 'Content-Type': 'application/json' };
  const response = await fetch(`${s.url}api/kernels`, { method: 'POST', headers, body: '{}' });
  if (response.status === 201) {
    const { id } = (await response.json()) as { id: string };
    await fetch(`${s.url}api/kernels/${id}`, { method: 'DELETE', headers });
  }
  return response.status;
}

const ALLOCATE_2_GIB = `
chunks = []
for i in range(32):
    chunks.append(b"x" * (64 * 2**20))  # written, so the pages are really used
    print(len(chunks) * 64, flush=True)
print("allocated 2 GiB", flush=True)
`;

/**
 * Forks until the kernel refuses, reports the refusal, holds every process for 2 s, then
 * kills its whole process group, as \`timeout\` does at its deadline: the children die as
 * orphans of the container's PID 1.
 */
const FORK_BOMB = `
import os, signal, time
forked = 0
try:
    while True:
        if os.fork() == 0:
            signal.pause()
            os._exit(0)
        forked += 1
except OSError as error:
    print(f"forked {forked}, then: {error!r} {error}", flush=True)
time.sleep(2)
os.killpg(0, signal.SIGKILL)
`;

/** Keeps more processes busy than the container has CPUs, until /tmp/stop exists. */
const SPIN = `
import os
children = []
for _ in range(max(4, 2 * os.cpu_count())):
    pid = os.fork()
    if pid == 0:
        children = None
        break
    children.append(pid)
while not os.path.exists("/tmp/stop"):
    for _ in range(100000):
        pass
for pid in children or []:
    os.waitpid(pid, 0)
`;

/** The CPU time (ns) a cgroup's processes have used, and how many periods it was throttled. */
async function cpuUsage(cpuacct: string, cpu: string) {
  const stat = await readFile(`${cpu}/cpu.stat`, 'utf8');
  return {
    used: await readNumber(`${cpuacct}/cpuacct.usage`),
    throttled: Number(/^nr_throttled (\d+)$/m.exec(stat)?.[1]),
    at: performance.now(),
  };
}

describe('a session’s limits hold against its own user', () => {
  test('the user is uid 1000 with no capabilities and cannot become root', async () => {
    expect((await inSession(session, ['id', '-u'])).stdout.trim()).toBe('1000');
    expect((await inSession(session, ['id', '-g'])).stdout.trim()).toBe('1000');
    const status = (await inSession(session, ['cat', '/proc/self/status'])).stdout;
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
      expect(status).toMatch(new RegExp(`^${set}:\\s+0+$`, 'm'));
    }
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);

    const setuid = await inSession(session, ['python3', '-c', 'import os; os.setuid(0)']);
    expect(setuid.code).toBe(1);
    expect(setuid.stderr).toContain('PermissionError: [Errno 1] Operation not permitted');
    // No sudo at all: the shell looked and found none (127 and silence, not Docker's words).
    expect(await inSession(session, ['sh', '-c', 'command -v sudo'])).toEqual({
      code: 127,
      stdout: '',
      stderr: '',
    });
    // su runs, and refuses: it cannot read the password database without privileges.
    const su = await inSession(session, ['su', '-c', 'id -u', 'root']);
    expect(su.code).toBe(1);
    expect(su.stderr).toContain('su: Authentication failure');
    expect(su.stdout).not.toMatch(/^0$/m);

    // The image's setuid programs (su, passwd, mount…) would make their caller root if
    // no-new-privileges did not hold; a setuid-root copy of `id` shows it directly. Docker's
    // own exec as uid 0 (still without capabilities) makes it, as an image author could.
    const made = await inSession(
      session,
      ['sh', '-c', 'cp /usr/bin/id /tmp/suid-id && chmod 4755 /tmp/suid-id && ls -ln /tmp/suid-id'],
      { user: '0' },
    );
    expect(made.stdout).toMatch(/^-rwsr-xr-x\s+1\s+0\s+0\s/);
    const id = await inSession(session, ['/tmp/suid-id']);
    expect(id.stdout).toMatch(/^uid=1000\(\w+\) gid=1000\(\w+\)/);
    expect(id.stdout).not.toContain('euid=0');
  }, 60_000);

  test('one CPU: the CFS quota is one period', async () => {
    const { stdout } = await inSession(session, [
      'sh',
      '-c',
      'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us',
    ]);
    const [quota, period] = stdout.trim().split('\n').map(Number) as [number, number];
    // NanoCpus is a CFS quota, not a cpuset: nproc and os.cpu_count() still show the host's
    // CPUs, so the quota and what the kernel lets the processes use are what to check.
    expect(quota / period).toBe(config.session.cpus);
  }, 30_000);

  test('busy processes get no more CPU than BINDERY_SESSION_CPUS, and the kernel throttles them', async () => {
    // A session of its own with a twentieth of a CPU: a limit the session's fair share of a
    // loaded host still exceeds, so that it binds whatever else runs. (With one CPU it binds
    // only while the host has more than one to spare: at load 15 on 2 CPUs a session got 0.2
    // CPU and not one throttled period in 60 s.)
    const cpus = 0.05;
    const small = await startSession({
      engine,
      config: loadConfig({
        BINDERY_IMAGE_PREFIX: config.imagePrefix,
        BINDERY_SESSION_CPUS: String(cpus),
      }),
      imageName: imageName!,
      repoLabel: 'test/cpu-limit',
    });
    started.push(small);
    const cpuacct = await hostCgroup(small, 'cpuacct');
    const cpu = await hostCgroup(small, 'cpu');
    expect(
      (await readNumber(`${cpu}/cpu.cfs_quota_us`)) /
        (await readNumber(`${cpu}/cpu.cfs_period_us`)),
    ).toBe(cpus);

    // Sampled from the host every two seconds, where the sampler is never throttled itself. On a
    // loaded host the session's fair share is below its quota, and the quota binds only in the
    // moments the host has a CPU to spare, hence sampling until a few periods were throttled.
    const spin = inSession(small, ['python3', '-c', SPIN], { timeoutMs: 90_000 });
    const first = await cpuUsage(cpuacct, cpu);
    let last = first;
    let peak = 0;
    do {
      await sleep(2000);
      const now = await cpuUsage(cpuacct, cpu);
      peak = Math.max(peak, (now.used - last.used) / 1e6 / (now.at - last.at));
      last = now;
    } while (
      last.at - first.at < 10_000 ||
      (last.throttled - first.throttled < 3 && last.at - first.at < 60_000)
    );
    await inSession(small, ['touch', '/tmp/stop']);
    expect(await spin).toEqual({ code: 0, stdout: '', stderr: '' });

    // The processes asked for more than the quota, and the kernel held them to it.
    expect(last.throttled - first.throttled).toBeGreaterThan(0);
    expect((last.used - first.used) / 1e6 / (last.at - first.at)).toBeLessThanOrEqual(cpus * 1.1);
    // A two-second sample (twenty periods) can hold the quota of 21 periods, and each CPU may
    // overrun a period by up to one scheduler tick before the kernel throttles it (repaid from
    // the next period, so it shows only in short samples): with 2 CPUs and even a 10 ms tick, at
    // most 1.05 × the quota + 10 ms/s = 1.25 × here. (Half-second samples taken inside the
    // session, where the sampler is throttled with the rest, once saw 1.31 ×.)
    expect(peak).toBeLessThanOrEqual(cpus * 1.3);
  }, 120_000);

  test('a process allocating 2 GiB is killed by the kernel; Jupyter and the other session stay up', async () => {
    const jupyterBefore = await jupyterStarted(session);
    const otherBefore = await jupyterStarted(other);
    expect(jupyterBefore).toBeDefined();
    expect(otherBefore).toBeDefined();
    const before = await containerState(session);
    const killsBefore = await oomKills(session);
    const otherKillsBefore = await oomKills(other);

    const run = await inSession(session, ['python3', '-c', ALLOCATE_2_GIB]);
    expect(run.code).toBe(137); // SIGKILL
    expect(run.stdout).not.toContain('allocated 2 GiB');
    // It got roughly as far as the memory limit, and no further.
    const allocatedMiB = Number(run.stdout.trim().split('\n').pop() ?? 0);
    expect(allocatedMiB * 2 ** 20).toBeGreaterThan(config.session.memoryBytes / 2);
    expect(allocatedMiB * 2 ** 20).toBeLessThan(config.session.memoryBytes);
    // The kernel's OOM killer of this container's memory cgroup did it, once.
    expect(await oomKills(session)).toBe(killsBefore + 1);
    expect(await oomKills(other)).toBe(otherKillsBefore);

    // Only the allocating process died: the container's main process is the same process as
    // before, never restarted, and Jupyter reports the same start time. (Docker's OOMKilled
    // describes the main process's exit, so it stays false; it would be true had the OOM
    // killer picked the main process.)
    expect(await containerState(session)).toEqual({
      ...before,
      Running: true,
      OOMKilled: false,
      RestartCount: 0,
    });
    expect(await jupyterStarted(session)).toBe(jupyterBefore);
    expect(await jupyterStarted(other)).toBe(otherBefore);
  }, 60_000);

  describe('a fork bomb', () => {
    let baseline: number;
    let pidsDir: string;

    test('stops at the pids limit with EAGAIN, never past it, while Jupyter answers', async () => {
      pidsDir = await hostCgroup(session, 'pids');
      expect(await readNumber(`${pidsDir}/pids.max`)).toBe(config.session.pidsLimit);
      baseline = await readNumber(`${pidsDir}/pids.current`);

      let finished = false;
      const bomb = inSession(session, ['timeout', '20', 'python3', '-c', FORK_BOMB], {
        timeoutMs: 40_000,
      }).finally(() => (finished = true));
      let highest = 0;
      let answeredWhileFull: boolean | undefined;
      while (!finished) {
        const current = await readNumber(`${pidsDir}/pids.current`);
        highest = Math.max(highest, current);
        if (current >= config.session.pidsLimit && answeredWhileFull === undefined) {
          answeredWhileFull = await answers(session);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const { stdout } = await bomb;

      expect(stdout).toMatch(/then: BlockingIOError\(11, 'Resource temporarily unavailable'\)/);
      const forked = Number(/forked (\d+)/.exec(stdout)?.[1]);
      expect(forked).toBeGreaterThan(config.session.pidsLimit - baseline - 10);
      expect(highest).toBe(config.session.pidsLimit);
      // The kernel's own high-water mark and count of refused forks, not only our samples.
      expect(await readNumber(`${pidsDir}/pids.peak`)).toBe(config.session.pidsLimit);
      const events = await readFile(`${pidsDir}/pids.events`, 'utf8');
      expect(Number(/^max (\d+)$/m.exec(events)?.[1])).toBeGreaterThan(0);
      expect(answeredWhileFull).toBe(true);
      expect(await answers(session)).toBe(true);
      expect(await answers(other)).toBe(true);
    }, 60_000);

    test('leaves no processes behind: its orphans are reaped and a new kernel starts', async () => {
      // Orphans become children of the container's PID 1; unless PID 1 reaps them, their
      // zombies keep every pid, and the session can start nothing (no kernel, no terminal).
      const deadline = Date.now() + 10_000;
      let current = await readNumber(`${pidsDir}/pids.current`);
      while (current > baseline + 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        current = await readNumber(`${pidsDir}/pids.current`);
      }
      expect(current).toBeLessThanOrEqual(baseline + 2);
      expect(await startsKernel(session)).toBe(201);
      expect((await inSession(session, ['true'])).code).toBe(0);
    }, 60_000);
  });
});
