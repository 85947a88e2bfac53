import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import { bridgeFor, buildNetworkFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService } from '../../src/service.js';
import { runBindery, startBindery as startCommand } from '../helpers/bindery-command.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer } from '../helpers/git-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { quietLog } from '../helpers/capture-log.js';

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

/** `bindery <args>` with `env` added to this file's image prefix; never throws. */
const binderyWith = (env: Record<string, string>, ...args: string[]) =>
  runBindery({ BINDERY_IMAGE_PREFIX: prefix, ...env }, ...args);

/** `bindery <args>` kept running, with this file's image prefix. */
const startBindery = (env: Record<string, string>, ...args: string[]) =>
  startCommand({ BINDERY_IMAGE_PREFIX: prefix, ...env }, ...args);

/** A directory for this file's module log hook and repositories; gone after the tests. */
let scratch = '';

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bindery-cli-test-'));
  // The command runs the compiled dist/ (npm run build, which deploy/setup.sh runs before
  // `npm test`); compiled here again when src/ or workers/ changed since, so the tests see
  // today's code. (scripts/build-cli.js takes about a second.)
  const compiled = await stat(join(ROOT, 'dist/cli.js')).then(
    (file) => file.mtimeMs,
    () => 0,
  );
  const sources = (
    await Promise.all(
      ['src', 'workers'].map(async (folder) =>
        (await readdir(join(ROOT, folder), { recursive: true })).map((file) =>
          join(ROOT, folder, file),
        ),
      ),
    )
  ).flat();
  const newest = Math.max(
    ...(await Promise.all(sources.map(async (file) => (await stat(file)).mtimeMs))),
  );
  if (newest > compiled) await exec('npm', ['run', 'build', '--silent'], { cwd: ROOT });
}, 300_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
  // Built images, and the layers of failed or stopped builds (`…:failed-<ref>`).
  const { stdout: images } = await exec('docker', [
    'images',
    '--format',
    '{{.Repository}}:{{.Tag}}',
  ]);
  built.push(...images.split('\n').filter((name) => name.startsWith(prefix)));
  for (const image of built) await engine.removeImage(image).catch(() => {});
  const config = loadConfig({ BINDERY_SESSION_NETWORK: network });
  await (await prepareSandbox({ engine, config, log: quietLog })).remove().catch(() => {});
  const redis = new Redis(REDIS_URL);
  const keys = [...(await redis.keys('bull:bindery-*')), ...(await redis.keys(`build:${prefix}*`))];
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}, 120_000);

/**
 * Runs `bindery <args>` with a module resolve hook; returns what it printed and the modules it
 * imported (node:module `register`), as paths under the repository.
 */
async function binderyLoading(env: Record<string, string>, ...args: string[]) {
  const log = join(scratch, `modules-${randomBytes(4).toString('hex')}.log`);
  const register = join(scratch, 'register.mjs');
  await writeFile(
    join(scratch, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.BINDERY_TEST_MODULE_LOG, resolved.url + '\\n');
  return resolved;
}`,
  );
  await writeFile(
    register,
    `import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);`,
  );
  const result = await binderyWith(
    { ...env, NODE_OPTIONS: `--import=${register}`, BINDERY_TEST_MODULE_LOG: log },
    ...args,
  );
  const root = pathToFileURL(ROOT).href + '/';
  const modules = (await readFile(log, 'utf8').catch(() => ''))
    .split('\n')
    .filter((url) => url.startsWith(root))
    .map((url) => url.slice(root.length));
  // dist/ is bundled (scripts/build-cli.js); its metafile says which sources each file holds.
  const meta = JSON.parse(await readFile(join(ROOT, 'dist/meta.json'), 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  const sources = new Set<string>();
  for (const module of modules) {
    if (module.startsWith('node_modules/')) sources.add(module);
    for (const input of Object.keys(meta.outputs[module]?.inputs ?? {})) sources.add(input);
  }
  return { ...result, modules: [...sources].sort() };
}

/** The code help, --version and a usage error may load: the entry and its argument reader. */
const LIGHT = ['src/cli.ts', 'src/cli/command-line.ts', 'src/errors.ts', 'workers/roles.ts'];
/** An environment loadConfig refuses: what reads no configuration answers all the same. */
const BROKEN = { PORT: 'not-a-port' };

describe('the bindery command line', () => {
  test("--help, --version and a command's --help answer without reading configuration or loading a command", async () => {
    const version = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version;
    // A command reads the configuration, and the hook sees what it loads.
    const refused = await binderyLoading(BROKEN, 'build', 'test/fixtures/repos/default');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^bindery: Bindery's environment is not valid:\n {2}PORT: /);
    expect(refused.modules).toEqual(expect.arrayContaining([...LIGHT, 'src/config.ts']));
    expect(refused.modules).toEqual(
      expect.arrayContaining([expect.stringMatching(/^node_modules\/dockerode\//)]),
    );

    const help = await binderyLoading(BROKEN, '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage:\n {2}bindery serve /);
    expect(help.stdout).toContain('bindery build <path|url> [--ref REF] [--image NAME]');
    expect(help.modules).toEqual(LIGHT);

    const shown = await binderyLoading(BROKEN, '--version');
    expect(shown).toMatchObject({ code: 0, stdout: `bindery ${version}\n`, stderr: '' });
    expect(shown.modules).toEqual(LIGHT);

    const build = await binderyLoading(BROKEN, 'build', '--help');
    expect(build).toMatchObject({ code: 0, stderr: '' });
    expect(build.stdout).toMatch(
      /^usage: bindery build <path\|url> \[--ref REF\] \[--image NAME\]\n/,
    );
    expect(build.stdout).toContain('--image NAME');
  }, 60_000);

  test('serve --help explains serve and starts nothing', async () => {
    const port = await freePort();
    const help = await binderyLoading({ PORT: String(port) }, 'serve', '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: bindery serve \[--role ROLE\]...\n\nRuns the service/);
    expect(help.modules).toEqual(LIGHT);
  }, 60_000);

  test('a mistyped option or command is one sentence and the usage, exit 2, no stack trace', async () => {
    const flag = await binderyLoading({}, 'build', '--bogus', 'test/fixtures/repos/default');
    expect(flag.code).toBe(2);
    expect(flag.stdout).toBe('');
    expect(flag.stderr).toBe(
      'bindery: build has no option --bogus.\n\n' +
        'usage: bindery build <path|url> [--ref REF] [--image NAME]\n' +
        '(bindery build --help says more)\n',
    );
    expect(flag.modules).toEqual(LIGHT);

    const command = await bindery('biuld', 'test/fixtures/repos/default');
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^bindery: There is no command "biuld"\.\n\nusage:\n/);
    expect(command.stderr).toContain('bindery launch <path|url>');
    expect(command.stderr).not.toMatch(/\n\s+at /);

    const missing = await bindery('launch', '--ref', 'main');
    expect(missing.code).toBe(2);
    expect(missing.stderr.split('\n')[0]).toBe(
      'bindery: launch needs the <path|url> of a repository.',
    );
  }, 60_000);

  test('Ctrl-C during a build stops it: exit 130, no image, no build container left', async () => {
    const repo = join(scratch, 'slow-build');
    await exec('mkdir', ['-p', repo]);
    await writeFile(
      join(repo, 'Dockerfile'),
      `ARG BINDERY_BASE_IMAGE=bindery/base:bookworm\nFROM \${BINDERY_BASE_IMAGE}\nRUN echo started-${run} && sleep 300\n`,
    );
    const build = startBindery({}, 'build', repo);
    try {
      await waitFor(
        () => new RegExp(`\\nstarted-${run}\\n`).test(build.output.err),
        'the build step to run',
        120_000,
      );
      const step = / ---> Running in ([0-9a-f]{12})\n/.exec(build.output.err)![1]!;
      build.child.kill('SIGINT');
      expect(await build.exited).toBe(130);
      expect(build.output.err).toMatch(/\nbindery: stopped by SIGINT\.\n$/);
      expect(build.output.out).toBe('');
      const image = /Building (\S+) \(dockerfile\)/.exec(build.output.err)?.[1];
      expect(image).toMatch(new RegExp(`^${prefix}`));
      expect(await engine.imageExists(image!)).toBe(false);
      // The step's container went with the build.
      const stepRunning = () =>
        exec('docker', ['inspect', '-f', '{{.State.Running}}', step]).then(
          ({ stdout }) => stdout.trim() === 'true',
          () => false,
        );
      await waitFor(async () => !(await stepRunning()), 'the build step to stop', 60_000);
    } finally {
      build.child.kill('SIGKILL');
    }
  }, 300_000);
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
    expect(stderr).toMatch(/\nBuilt the image in \d+\.\d s\.\n$/);

    // Again: the image exists, and the command says how little time finding it took.
    const again = await bindery('build', 'test/fixtures/repos/default');
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n').at(-1)).toBe(image);
    expect(again.stderr).toMatch(/\nFound the built image in \d+\.\d s\.\n$/);
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

    // A Redis that does not answer: one sentence naming it without its password, for each role.
    for (const command of ['serve', 'worker']) {
      const away = await runBindery({ REDIS_URL: 'redis://:hunter2@127.0.0.1:9' }, command);
      expect(away).toEqual({
        code: 1,
        stdout: '',
        stderr:
          'bindery: Redis at 127.0.0.1:9 does not answer (connect ECONNREFUSED 127.0.0.1:9); start it, or set REDIS_URL to where it runs.\n',
      });
    }
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

  test('worker --role github without the GitHub App says what to set, exit 1', async () => {
    const worker = startBindery(
      { REDIS_URL, BINDERY_SESSION_NETWORK: network },
      'worker',
      '--role',
      'github',
    );
    expect(await worker.exited).toBe(1);
    expect(worker.output.err.trim()).toBe(
      'bindery: The GitHub worker needs the GitHub App: set APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET.',
    );
  }, 60_000);

  test('worker --role build builds what a web process enqueues, and stops on SIGTERM', async () => {
    const git = await startGitServer();
    const TOKEN = `token-${run}`;
    const env = {
      REDIS_URL,
      BINDERY_SESSION_NETWORK: network,
      BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    };
    // The service's lines are the logger's, in the format LOG_FORMAT asks for.
    const worker = startBindery({ ...env, LOG_FORMAT: 'json' }, 'worker', '--role', 'build');
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
      roles: ['web'],
      log: quietLog,
    });
    try {
      await waitFor(
        () => /"msg":"Bindery running roles: build"\}\n/.test(worker.output.err),
        'the worker',
        60_000,
      );
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
      const entries = () =>
        worker.output.err
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
      // The build's one line in the service's log (its own lines are in its build log).
      const builtLine = expect.objectContaining({
        level: 30,
        component: 'build-worker',
        image: ready.imageName,
        msg: `built ${String(ready.imageName)}`,
      });
      await waitFor(() => entries().some((entry) => builtLine.asymmetricMatch(entry)), 'built');

      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      expect(entries()).toContainEqual(expect.objectContaining({ level: 30, msg: 'stopping' }));
    } finally {
      worker.child.kill('SIGKILL');
      await web.close();
      await git.close();
    }
  }, 300_000);
});
