import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import type { BuildEvent } from '../../src/build-event.js';
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
import { startGitRelay } from '../helpers/git-relay.js';

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

  test('a repository whose fetch grows past the size limit is stopped while it arrives', async () => {
    await server.publish('big', FIXTURE);
    // 48 files of 64 KiB that do not compress (the next test has one large file instead).
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 48; i++) files[`data/${i}.bin`] = randomBytes(64 * 2 ** 10);
    await server.commit('big', files);
    // The fetch never completes (2 MiB of the pack, then silence, and a clone timeout far
    // away), so only the watcher of the arriving objects can end it.
    const relay = await startGitRelay(server.url, { fetchBytes: 2 * 2 ** 20 });
    const url = `${relay.url}/big.git`;
    const before = await ourImages();
    const started = Date.now();
    try {
      const error = await builderWith({
        BINDERY_CLONE_MAX_SIZE: '1m',
        BINDERY_CLONE_TIMEOUT: '120',
      })
        .build(parseSource(url))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RepositoryError);
      expect((error as Error).message).toBe(
        `${url} is larger than this service's limit of 1 MiB; Bindery builds repositories up to that size.`,
      );
      expect(relay.seen).toContain('fetch');
      expect(Date.now() - started).toBeLessThan(60_000);
    } finally {
      await relay.close();
    }
    expect(await ourImages()).toEqual(before);
  }, 120_000);

  test('one large file past the size limit is stopped while it arrives, not held in memory', async () => {
    await server.publish('one-big', FIXTURE);
    await server.commit('one-big', { 'data.bin': randomBytes(3 * 2 ** 20) });
    const relay = await startGitRelay(server.url, { fetchBytes: 2 * 2 ** 20 });
    const url = `${relay.url}/one-big.git`;
    try {
      const error = await builderWith({ BINDERY_CLONE_MAX_SIZE: '1m', BINDERY_CLONE_TIMEOUT: '20' })
        .build(parseSource(url))
        .catch((caught: unknown) => caught);
      expect((error as Error).message).toBe(
        `${url} is larger than this service's limit of 1 MiB; Bindery builds repositories up to that size.`,
      );
    } finally {
      await relay.close();
    }
  }, 60_000);

  test('a repository of few objects whose files are past the size limit is refused before checkout', async () => {
    await server.publish('zeros', FIXTURE);
    // 3 MiB of zeros packs into a few KiB: the fetch is small, the working tree is not.
    const sha = await server.commit('zeros', { 'data.bin': Buffer.alloc(3 * 2 ** 20) });
    const url = `${server.url}/zeros.git`;
    const before = await ourImages();
    const error = await builderWith({ BINDERY_CLONE_MAX_SIZE: '1m' })
      .build(parseSource(url))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RepositoryError);
    expect((error as Error).message).toBe(
      `${url} at ${sha.slice(0, 12)} holds files past this service's limit of 1 MiB; ` +
        `Bindery builds repositories up to that size.`,
    );
    expect(await ourImages()).toEqual(before);
  }, 60_000);

  test('a git host that never answers times out in ls-remote, after the clone timeout', async () => {
    // Accepts connections and says nothing: git waits until Bindery's timeout stops it.
    const silent: Server = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const url = `http://127.0.0.1:${port}/x.git`;
    const started = Date.now();
    const events: BuildEvent[] = [];
    try {
      const error = await builderWith({ BINDERY_CLONE_TIMEOUT: '2' })
        .build(parseSource(url), { onEvent: (event) => events.push(event) })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toBe(
        `Could not reach ${url}: it did not answer in time. Try again later.`,
      );
      // The ref never resolved: nothing was fetched.
      expect(events.filter((event) => event.phase === 'fetching')).toEqual([]);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      silent.close();
    }
  }, 30_000);

  test('a git host that lists its refs and then stalls the fetch is stopped at the clone timeout', async () => {
    const relay = await startGitRelay(server.url, { fetchBytes: 0 });
    const url = `${relay.url}/demo.git`;
    const events: BuildEvent[] = [];
    const started = Date.now();
    try {
      const error = await builderWith({ BINDERY_CLONE_TIMEOUT: '3' })
        .build(parseSource(url, 'main'), { onEvent: (event) => events.push(event) })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toBe(
        `Could not reach ${url}: it did not answer in time. Try again later.`,
      );
      // ls-remote got its answer and the ref resolved; the fetch was asked for and held.
      const sha = await git(join(server.root, 'demo.git'), 'rev-parse', 'main');
      expect(events.find((event) => event.phase === 'fetching')).toMatchObject({
        message: expect.stringContaining(sha),
      });
      expect(relay.seen.slice(0, 2)).toEqual(['GET info/refs', 'ls-refs']);
      expect(relay.seen.at(-1)).toBe('fetch');
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await relay.close();
    }
  }, 60_000);
});

describe('redirects from a git host are refused, not followed', () => {
  const refused = (url: string) =>
    `${url} redirects to another address, and Bindery follows no redirects from a git host ` +
    `(one could lead the clone to a private address). Use the address the repository is served at.`;

  test.each([301, 302] as const)(
    'a %i on the ref listing, to a real repository',
    async (status) => {
      const relay = await startGitRelay(server.url, { redirect: { status, to: server.url } });
      const url = `${relay.url}/demo.git`;
      const before = await ourImages();
      try {
        const error = await builderWith()
          .build(parseSource(url))
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(RepositoryError);
        expect((error as Error).message).toBe(refused(url));
        expect(relay.seen).toEqual(['redirected']);
      } finally {
        await relay.close();
      }
      expect(await ourImages()).toEqual(before);
    },
    60_000,
  );

  test('a 302 on the fetch, after an honest ref listing', async () => {
    const relay = await startGitRelay(server.url, {
      redirect: { status: 302, to: server.url, fromGet: 2 },
    });
    const url = `${relay.url}/demo.git`;
    const before = await ourImages();
    try {
      const error = await builderWith()
        .build(parseSource(url))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RepositoryError);
      expect((error as Error).message).toBe(refused(url));
      expect(relay.seen).toEqual(['GET info/refs', 'ls-refs', 'redirected']);
    } finally {
      await relay.close();
    }
    expect(await ourImages()).toEqual(before);
  }, 60_000);
});
