import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import type { BuildEvent } from '../../src/build/build-events.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import {
  ForbiddenError,
  NotFoundError,
  RepositoryError,
  UnavailableError,
} from '../../src/errors.js';
import { fetchCommit } from '../../src/repos/fetch-commit.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { git, startGitServer, type GitServer } from '../helpers/git-server.js';
import { freePort } from '../helpers/free-port.js';

const exec = promisify(execFile);
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const prefix = `bindery-test/g${randomBytes(4).toString('hex')}-`;
const engine = new DockerEngine();
const builderWith = (env: Record<string, string> = {}) =>
  new Builder({
    engine,
    config: loadConfig({
      BINDERY_IMAGE_PREFIX: prefix,
      BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
      ...env,
    }),
  });

/** Images this run created: a refused build must leave this list unchanged. */
async function ourImages(): Promise<string[]> {
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  return stdout.split('\n').filter((name) => name.startsWith(prefix));
}

let server: GitServer;
let repo: { url: string; sha: string };

beforeAll(async () => {
  server = await startGitServer();
  repo = await server.publish('demo', FIXTURE);
});

afterAll(async () => {
  for (const image of await ourImages()) await engine.removeImage(image);
  await server.close();
});

describe('building from a git URL', () => {
  test('resolves HEAD to the commit, names the image by it, and builds it once', async () => {
    const events: BuildEvent[] = [];
    const first = await builderWith().build(parseSource(repo.url), {
      onEvent: (e) => events.push(e),
    });
    expect(first.ref).toBe(repo.sha);
    expect(first.imageName.endsWith(`:${repo.sha}`)).toBe(true);
    expect(first.cached).toBe(false);
    expect(events[0]).toMatchObject({
      phase: 'fetching',
      message: expect.stringContaining(repo.sha),
    });
    expect(events.at(-1)).toMatchObject({ phase: 'built', imageName: first.imageName });

    const { exitCode, output } = await engine.runToCompletion({
      image: first.imageName,
      cmd: ['./verify'],
      limits: { cpus: 1, memoryBytes: 2 ** 30 },
      networkDisabled: true,
      timeoutMs: 60_000,
    });
    expect({ exitCode, output }).toMatchObject({
      exitCode: 0,
      output: expect.stringContaining('default ok'),
    });

    // The branch name resolves to the same commit: no second build.
    const again = await builderWith().build(parseSource(repo.url, 'main'));
    expect(again).toMatchObject({ imageName: first.imageName, cached: true });
  }, 300_000);

  test('resolves branches and annotated tags, and fetches exactly the asked commit, shallow', async () => {
    const tagged = await server.commit('demo', { 'notes/later.txt': 'later\n' }, 'v1.0');
    const builder = builderWith();
    await expect(builder.resolve(parseSource(repo.url, 'v1.0'))).resolves.toMatchObject({
      ref: tagged,
    });
    await expect(builder.resolve(parseSource(repo.url, 'HEAD'))).resolves.toMatchObject({
      ref: tagged,
    });

    const dir = await mkdtemp(join(tmpdir(), 'bindery-fetch-'));
    try {
      await fetchCommit(repo.url, repo.sha, join(dir, 'repo'), {
        timeoutMs: 30_000,
        maxBytes: 2 ** 30,
      });
      expect(await git(join(dir, 'repo'), 'rev-parse', 'HEAD')).toBe(repo.sha);
      expect(await git(join(dir, 'repo'), 'rev-list', '--count', 'HEAD')).toBe('1');
      expect(await readdir(join(dir, 'repo'))).not.toContain('notes');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('speaks the git protocol too (git://)', async () => {
    const port = await freePort();
    const daemon = spawn(
      'git',
      [
        'daemon',
        '--reuseaddr',
        '--export-all',
        `--base-path=${server.root}`,
        '--listen=127.0.0.1',
        `--port=${port}`,
      ],
      { stdio: 'ignore' },
    );
    try {
      const url = `git://127.0.0.1:${port}/demo.git`;
      let resolved;
      for (let attempt = 0; attempt < 50 && !resolved; attempt++) {
        resolved = await builderWith()
          .resolve(parseSource(url, 'main'))
          .catch(() => undefined);
        if (!resolved) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(resolved?.ref).toBe(await git(join(server.root, 'demo.git'), 'rev-parse', 'main'));
      const dir = await mkdtemp(join(tmpdir(), 'bindery-fetch-'));
      try {
        await fetchCommit(url, resolved!.ref, join(dir, 'repo'), {
          timeoutMs: 30_000,
          maxBytes: 2 ** 30,
        });
        expect(await readdir(join(dir, 'repo'))).toContain('verify');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      daemon.kill();
    }
  }, 60_000);
});

describe('refusing what cannot be built, before building anything', () => {
  test('a ref that does not exist', async () => {
    const before = await ourImages();
    const attempt = builderWith().build(parseSource(repo.url, 'no-such-branch'));
    await expect(attempt).rejects.toThrow(NotFoundError);
    await expect(attempt).rejects.toThrow(/has no branch or tag named "no-such-branch"/);
    expect(await ourImages()).toEqual(before);
  });

  test('a URL that is not a git repository', async () => {
    const attempt = builderWith().build(parseSource(`${server.url}/just/a/page`));
    await expect(attempt).rejects.toThrow(NotFoundError);
    await expect(attempt).rejects.toThrow(/is not a git repository/);
  });

  test('a git host on loopback unless BINDERY_GIT_ALLOWED_HOSTS lists it', async () => {
    const guarded = new Builder({ engine, config: loadConfig({ BINDERY_IMAGE_PREFIX: prefix }) });
    const attempt = guarded.build(parseSource(repo.url));
    await expect(attempt).rejects.toThrow(ForbiddenError);
    await expect(attempt).rejects.toThrow(/127\.0\.0\.1.*BINDERY_GIT_ALLOWED_HOSTS=127\.0\.0\.1/s);
  });

  test('a repository over the size limit', async () => {
    await server.publish('big', FIXTURE);
    await server.commit('big', { 'data.bin': randomBytes(3 * 2 ** 20) });
    const before = await ourImages();
    const attempt = builderWith({ BINDERY_CLONE_MAX_SIZE: '1m' }).build(
      parseSource(`${server.url}/big.git`),
    );
    await expect(attempt).rejects.toThrow(RepositoryError);
    await expect(attempt).rejects.toThrow(/limit of 1 MiB/);
    expect(await ourImages()).toEqual(before);
  }, 60_000);

  test('a git host that never answers, after the clone timeout', async () => {
    // Accepts connections and says nothing: git waits until Bindery's timeout stops it.
    const silent: Server = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    try {
      const attempt = builderWith({ BINDERY_CLONE_TIMEOUT: '2' }).build(
        parseSource(`http://127.0.0.1:${port}/x.git`),
      );
      await expect(attempt).rejects.toThrow(UnavailableError);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      silent.close();
    }
  }, 30_000);
});
