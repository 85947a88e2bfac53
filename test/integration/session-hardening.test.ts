import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { StartedSession } from '../../src/sessions/start-session.js';
import { startDefaultSession, type DefaultSession } from '../helpers/default-session.js';

const exec = promisify(execFile);
let started: DefaultSession;
let imageName: string;
let session: StartedSession;

beforeAll(async () => {
  started = await startDefaultSession('h');
  ({ imageName, session } = started);
  // A kernel too: its processes are part of what a visitor's code can read.
  const kernel = await fetch(`${session.url}api/kernels`, {
    method: 'POST',
    headers: { Authorization: `token ${session.token}` },
  });
  expect(kernel.status).toBe(201);
}, 300_000);

afterAll(async () => {
  await started?.remove();
}, 60_000);

/** Runs `script` in the session as its user, the way a notebook's `!` line would. */
async function inSession(script: string): Promise<string> {
  const { stdout } = await exec(
    'docker',
    ['exec', '-u', '1000', session.container.id, 'sh', '-c', script],
    { maxBuffer: 16 * 2 ** 20 },
  );
  return stdout;
}

/** Every process's command line on the host, NULs as spaces, keyed by pid. */
async function hostCommandLines(): Promise<Map<string, string>> {
  const lines = new Map<string, string>();
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const line = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    lines.set(pid, line.replaceAll('\0', ' '));
  }
  return lines;
}

/** Host pids of the session's processes (docker top), with their command lines. */
async function sessionPids(): Promise<string[]> {
  const { stdout } = await exec('docker', ['top', session.container.id, '-o', 'pid']);
  return stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Mount points (mountinfo field 5) of a process, sorted. */
const mountPoints = (mountinfo: string) =>
  mountinfo
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4]!)
    .sort();

describe('a session hides its token, and has no more of the host than Docker gives', () => {
  test('the token is on no command line, inside the session or on the host, only in the environment', async () => {
    const pids = await sessionPids();
    // Jupyter, its kernel and the init: the check below reads every one of them.
    expect(pids.length).toBeGreaterThanOrEqual(3);
    const host = await hostCommandLines();
    for (const pid of pids) expect(host.has(pid)).toBe(true);
    expect([...host.values()].some((line) => /jupyter-lab/.test(line))).toBe(true);
    expect([...host.values()].some((line) => /ipykernel_launcher/.test(line))).toBe(true);
    expect([...host.values()].filter((line) => line.includes(session.token))).toEqual([]);

    const inside = await inSession(
      'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done',
    );
    expect(inside).toMatch(/jupyter-lab/);
    expect(inside).not.toContain(session.token);

    // The same reading finds the token where it is: the server's environment.
    const environments = await Promise.all(
      pids.map((pid) => readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')),
    );
    expect(environments.some((env) => env.includes(`JUPYTER_TOKEN=${session.token}`))).toBe(true);
  }, 30_000);

  test('mounts only what a plain docker run of the same image has: no host paths, no volumes', async () => {
    const { stdout } = await exec('docker', ['inspect', session.container.id]);
    const [info] = JSON.parse(stdout) as [
      { Mounts: unknown[]; HostConfig: { Binds: unknown; Mounts?: unknown; VolumesFrom: unknown } },
    ];
    expect(info.Mounts).toEqual([]);
    expect(info.HostConfig.Binds ?? []).toEqual([]);
    expect(info.HostConfig.Mounts ?? []).toEqual([]);
    expect(info.HostConfig.VolumesFrom ?? []).toEqual([]);

    const session_ = mountPoints(await inSession('cat /proc/1/mountinfo'));
    const { stdout: plain } = await exec('docker', [
      'run',
      '--rm',
      // Sessions run with Docker's init as PID 1 (its binary is mounted in): part of what Docker gives.
      '--init',
      '--network=none',
      '--entrypoint=cat',
      imageName,
      '/proc/1/mountinfo',
    ]);
    expect(session_).toEqual(mountPoints(plain));
    expect(session_).toContain('/');
  }, 60_000);

  test('no Docker socket, no Docker host, and no socket of the host anywhere in the file system', async () => {
    const found = await inSession(
      'ls /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock 2>/dev/null; ' +
        'find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null; ' +
        'env | grep -i docker; true',
    );
    expect(found.trim()).toBe('');
    // The same search finds a socket where there is one.
    const control = await inSession(
      'python3 -c "import socket; socket.socket(socket.AF_UNIX).bind(\'/tmp/probe.sock\')"; ' +
        'find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null; rm -f /tmp/probe.sock',
    );
    expect(control.trim()).toBe('/tmp/probe.sock');
  }, 60_000);

  test('open files stop at the limit of 4096, which the session cannot raise', async () => {
    const pids = await sessionPids();
    const limits = await Promise.all(
      pids.map((pid) => readFile(`/proc/${pid}/limits`, 'utf8').catch(() => '')),
    );
    for (const text of limits.filter(Boolean)) {
      expect(text).toMatch(/^Max open files\s+4096\s+4096\s+files\s*$/m);
    }
    const opened = await inSession(
      'python3 -c "\n' +
        'import resource\n' +
        'files = []\n' +
        'try:\n' +
        "    while True: files.append(open('/dev/null'))\n" +
        'except OSError as error: print(error.errno, len(files))\n' +
        'try:\n' +
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192)); print('raised')\n" +
        "except ValueError: print('not raised')\n" +
        '"',
    );
    const [first, second] = opened.trim().split('\n');
    const [errno, count] = first!.split(' ').map(Number);
    expect(errno).toBe(24); // EMFILE
    expect(count).toBeGreaterThan(4000);
    expect(count).toBeLessThan(4096);
    expect(second).toBe('not raised');
  }, 60_000);
});
