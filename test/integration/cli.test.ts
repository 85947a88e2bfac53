import { afterAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import { bridgeFor, buildNetworkFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService } from '../../src/service.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer } from '../helpers/git-server.js';
import { waitFor } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const prefix = `bindery-test/c${randomBytes(4).toString('hex')}-`;
const engine = new DockerEngine();
const built: string[] = [];
const run = randomBytes(3).toString('hex');
/** The sandbox network of this file's own, for `bindery sandbox` and `bindery worker`. */
const network = `bindery-test-c${run}`;
/** A Redis database no other test file uses: `bindery worker` takes the default queue names. */
const REDIS_URL = 'redis://127.0.0.1:6379/11';

/** Runs the `bindery` command as a person would; never throws, returns what it printed. */
async function bindery(...args: string[]) {
  return binderyWith({}, ...args);
}

async function binderyWith(env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await exec(join(ROOT, 'bin/bindery.js'), args, {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', BINDERY_IMAGE_PREFIX: prefix, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Starts `bindery <args>` and keeps it running; its output gathers in `out` and `err`. */
function startBindery(env: Record<string, string>, ...args: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(join(ROOT, 'bin/bindery.js'), args, {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', BINDERY_IMAGE_PREFIX: prefix, ...env },
  });
  const output = { out: '', err: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, output, exited };
}

afterAll(async () => {
  for (const image of built) await engine.removeImage(image).catch(() => {});
  const config = loadConfig({ BINDERY_SESSION_NETWORK: network });
  await (await prepareSandbox({ engine, config, log: () => {} })).remove().catch(() => {});
  const redis = new Redis(REDIS_URL);
  const keys = [...(await redis.keys('bull:bindery-*')), ...(await redis.keys(`build:${prefix}*`))];
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}, 120_000);

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
  }, 30_000);

  test('launch prints a URL whose Jupyter answers, on 127.0.0.1 only; Ctrl-C removes the session', async () => {
    const launch = startBindery({}, 'launch', 'test/fixtures/repos/default');
    try {
      await waitFor(() => /\?token=/.test(launch.output.out), 'the URL on stdout', 240_000);
      const url = launch.output.out.trim().split('\n').at(-1)!;
      const match =
        /^http:\/\/127\.0\.0\.1:(\d+)\/user\/(bindery-[0-9a-f]{12})\/\?token=([0-9a-f]{48})$/.exec(
          url,
        );
      expect(match).not.toBeNull();
      const [, port, name, token] = match!;
      const status = await fetch(url.replace('?token=', 'api/status?token='));
      expect(status.status).toBe(200);
      expect((await fetch(url.replace(/\?token=.*/, 'api/status'))).status).toBe(403);
      // Published on loopback only, and the token on no command line of the host.
      const { stdout: ports } = await exec('docker', ['port', name!, '8888/tcp']);
      expect(ports.trim().split('\n')).toEqual([`127.0.0.1:${port}`]);
      const { stdout: commands } = await exec('ps', ['-eo', 'args']);
      expect(commands).not.toContain(token);
      const { stdout: image } = await exec('docker', ['inspect', '-f', '{{.Config.Image}}', name!]);
      built.push(image.trim());

      // Ctrl-C: the session is removed, then the command exits 130 as interrupted commands do.
      launch.child.kill('SIGINT');
      expect(await launch.exited).toBe(130);
      const gone = await exec('docker', ['inspect', name!]).then(
        () => false,
        () => true,
      );
      expect(gone).toBe(true);
    } finally {
      launch.child.kill('SIGKILL');
    }
  }, 300_000);

  test('sandbox installs the network and its rules, puts back a deleted rule, and --remove takes all away', async () => {
    const env = { BINDERY_SESSION_NETWORK: network };
    const bridge = bridgeFor(network);
    const chain = egressChain({ bridge });
    const hook = ['DOCKER-USER', '-i', bridge, '-j', chain];
    const hasRule = (args: string[]) =>
      exec('iptables', ['-C', ...args]).then(
        () => true,
        () => false,
      );
    const hasNetwork = (name: string) =>
      exec('docker', ['network', 'inspect', name]).then(
        () => true,
        () => false,
      );

    const installed = await binderyWith(env, 'sandbox');
    expect(installed).toMatchObject({ code: 0 });
    expect(installed.stderr).toContain(`The sandbox is in place on ${network} (${bridge})`);
    expect(await hasNetwork(network)).toBe(true);
    expect(await hasRule(hook)).toBe(true);

    await exec('iptables', ['-D', ...hook]);
    expect(await hasRule(hook)).toBe(false);
    const again = await binderyWith(env, 'sandbox');
    expect(again).toMatchObject({ code: 0 });
    expect(await hasRule(hook)).toBe(true);

    const removed = await binderyWith(env, 'sandbox', '--remove');
    expect(removed).toMatchObject({ code: 0 });
    expect(removed.stderr).toContain(`Removed the networks ${network} (${bridge})`);
    expect(await hasNetwork(network)).toBe(false);
    expect(await hasRule(hook)).toBe(false);
    const chains = await exec('iptables', ['-S']);
    expect(chains.stdout).not.toContain(chain);
    const { stdout: networks } = await exec('docker', ['network', 'ls', '--format', '{{.Name}}']);
    expect(
      networks.split('\n').filter((name) => name.startsWith(buildNetworkFor(network))),
    ).toEqual([]);
  }, 120_000);

  test('worker builds what a web process enqueues, and stops on SIGTERM', async () => {
    const git = await startGitServer();
    const TOKEN = `token-${run}`;
    const env = {
      REDIS_URL,
      BINDERY_SESSION_NETWORK: network,
      BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    };
    const worker = startBindery(env, 'worker');
    const port = await freePort();
    const web = await startService({
      config: loadConfig({
        ...env,
        PORT: String(port),
        BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
        BINDERY_IMAGE_PREFIX: prefix,
        BINDERY_API_TOKENS: TOKEN,
      }),
      host: '127.0.0.1',
      // No worker here: only the command's worker can build.
      roles: { web: true },
      log: () => {},
    });
    try {
      await waitFor(() => /build worker running/.test(worker.output.err), 'the worker', 60_000);
      const repo = await git.publish('demo', join(ROOT, 'test/fixtures/repos/default'));
      const { events } = await readEventStream(
        `${web.url}/build/git/${encodeURIComponent(repo.url)}/HEAD?build_only=true`,
        { headers: { authorization: `Bearer ${TOKEN}` } },
      );
      const ready = events.at(-1)!;
      expect(ready).toMatchObject({
        phase: 'ready',
        imageName: expect.stringMatching(new RegExp(`^${prefix}.*:${repo.sha}$`)),
      });
      built.push(String(ready.imageName));
      expect(await engine.imageExists(String(ready.imageName))).toBe(true);

      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      expect(worker.output.err).toContain('stopping...');
    } finally {
      worker.child.kill('SIGKILL');
      await web.close();
      await git.close();
    }
  }, 300_000);
});
