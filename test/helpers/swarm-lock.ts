import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Held by the test file that has put this machine's Docker daemon in a swarm of its own. */
const LOCK = '/tmp/bindery-test-swarm.lock';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Waits until no other test file holds the daemon's swarm, then holds it: jest runs integration
 * files side by side, and two files each running `docker swarm init` and `leave` would pull the
 * swarm from under each other. A lock whose holder has died is taken over. Resolves with the
 * release.
 */
export async function holdSwarm(timeoutMs = 600_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK);
      await writeFile(`${LOCK}/pid`, String(process.pid));
      return () => rm(LOCK, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(await readFile(`${LOCK}/pid`, 'utf8').catch(() => ''));
    // No pid: its holder is between mkdir and writeFile, or died there (then the lock is old).
    const age = Date.now() - ((await stat(LOCK).catch(() => undefined))?.mtimeMs ?? Date.now());
    if (holder ? !alive(holder) : age > 10_000) await rm(LOCK, { recursive: true, force: true });
    if (Date.now() > deadline) {
      throw new Error(
        `Another test file (pid ${holder || 'unknown'}) has held ${LOCK} for too long.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const docker = async (...args: string[]) => (await exec('docker', args)).stdout.trim();

/**
 * Holds the daemon's swarm (holdSwarm) and makes it a one-node swarm on loopback unless it is in
 * one already. Resolves with the release: it leaves the swarm it made (and removes the
 * `docker_gwbridge` network that came with it), then lets the next file hold the swarm.
 */
export async function holdLoopbackSwarm(): Promise<() => Promise<void>> {
  const release = await holdSwarm();
  if ((await docker('info', '--format', '{{.Swarm.LocalNodeState}}')) !== 'inactive') {
    return release;
  }
  const gwbridgeBefore =
    (await docker('network', 'ls', '-q', '--filter', 'name=^docker_gwbridge$')) !== '';
  await docker('swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', '127.0.0.1:2377');
  return async () => {
    try {
      await docker('swarm', 'leave', '--force');
      if (!gwbridgeBefore) await docker('network', 'rm', 'docker_gwbridge');
    } finally {
      await release();
    }
  };
}
