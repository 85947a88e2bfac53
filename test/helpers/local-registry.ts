import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

/** Debian's `docker-registry` (Distribution 2.8), which deploy/setup.sh installs. */
const REGISTRY_BINARY = '/usr/bin/docker-registry';
const exec = promisify(execFile);

/**
 * An htpasswd line for `username`: Distribution takes bcrypt only, which Node lacks; Python's
 * crypt (glibc's libxcrypt) makes it.
 */
async function htpasswdLine(username: string, password: string): Promise<string> {
  const { stdout } = await exec('python3', [
    '-W',
    'ignore',
    '-c',
    'import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))',
    password,
  ]);
  return `${username}:${stdout.trim()}\n`;
}

export interface LocalRegistry {
  /** `127.0.0.1:<port>`, as BINDERY_REGISTRY takes it (Docker speaks plain HTTP to loopback). */
  host: string;
  /** Tags of `repository` the registry lists (`/v2/<repository>/tags/list`); [] when none. */
  tags(repository: string): Promise<string[]>;
  /** Stops the registry process; its storage stays for close(). */
  stop(): Promise<void>;
  /** Stops it if running and removes its storage. */
  close(): Promise<void>;
}

/** Whether the registry answers at all (401 is an answer: it wants a sign-in). */
const answers = async (url: string) =>
  fetch(url)
    .then((response) => response.ok || response.status === 401)
    .catch(() => false);

/**
 * A registry of the test's own: storage in a fresh temporary directory, listening on a free
 * loopback port, run as `docker-registry serve <config>` until stop(). `readOnly` starts it in
 * Distribution's read-only maintenance mode: lookups answer, pushes are refused. With `auth`,
 * every request must sign in as that user (htpasswd, basic auth).
 */
export async function startLocalRegistry(
  options: { readOnly?: boolean; auth?: { username: string; password: string } } = {},
): Promise<LocalRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'bindery-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  const { auth } = options;
  if (auth)
    await writeFile(join(dir, 'htpasswd'), await htpasswdLine(auth.username, auth.password));
  const authorization = auth
    ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`
    : undefined;
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      '    readonly:',
      `      enabled: ${options.readOnly === true}`,
      ...(auth
        ? ['auth:', '  htpasswd:', '    realm: bindery-test', `    path: ${join(dir, 'htpasswd')}`]
        : []),
      'http:',
      `  addr: ${host}`,
      '',
    ].join('\n'),
  );
  let output = '';
  let child: ChildProcess | undefined = spawn(REGISTRY_BINARY, ['serve', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child?.once('exit', () => resolve()));

  const stop = async () => {
    if (!child) return;
    child.kill('SIGTERM');
    await exited;
    child = undefined;
  };
  try {
    await waitFor(
      async () => {
        if (child?.exitCode !== null) throw new Error(`docker-registry exited: ${output}`);
        return answers(`http://${host}/v2/`);
      },
      `the registry on ${host}`,
      15_000,
    );
  } catch (error) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    host,
    async tags(repository) {
      const response = await fetch(`http://${host}/v2/${repository}/tags/list`, {
        headers: authorization ? { authorization } : {},
      });
      if (response.status === 404) return [];
      const body = (await response.json()) as { tags?: string[] | null };
      return body.tags ?? [];
    },
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
