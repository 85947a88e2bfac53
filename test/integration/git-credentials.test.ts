import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import type { BuildEvent } from '../../src/build-event.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { NotFoundError, RepositoryError } from '../../src/errors.js';
import { fetchCommit } from '../../src/repos/fetch-commit.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { git, startGitServer, type GitServer } from '../helpers/git-server.js';

// A private repository behind a host that wants a GitHub App installation token, the way
// GitHub takes one. Real git, loopback only.

const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const LIMITS = { timeoutMs: 30_000, maxBytes: 2 ** 30 };
/** Shaped like an installation token; random, so finding it anywhere means it leaked. */
const TOKEN = `ghs_${randomBytes(18).toString('hex')}`;
const WRONG_TOKEN = `ghs_${randomBytes(18).toString('hex')}`;
/** The token as it travels in the Authorization header. */
const basic = (token: string) => Buffer.from(`x-access-token:${token}`).toString('base64');
const REFUSED =
  /could not be read .*Check .*the GitHub App is installed on the repository with the "Contents: read" permission\./s;

let server: GitServer;
let repo: { url: string; sha: string };
const dirs: string[] = [];

async function checkoutDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bindery-credentials-'));
  dirs.push(dir);
  return join(dir, 'repo');
}

/** What `promise` rejected with; fails the test when it resolved. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('it succeeded');
    },
    (error: Error) => error,
  );
}

/** Everything an error could show anyone: message, stack, causes and own properties. */
const everythingIn = (error: Error) => `${error.stack}\n${inspect(error, { depth: null })}`;

/** The files below `dir` that contain `secret`, e.g. a credential written into .git/config. */
async function filesHolding(dir: string, secret: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(secret)) found.push(path);
  }
  return found;
}

/** The command line and environment of every process on this machine, from /proc. */
async function processes(): Promise<{ cmdline: string; environ: string }[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  const read = (path: string) =>
    readFile(path, 'utf8').then(
      (text) => text.split('\0').join(' ').trim(),
      () => '', // Gone already.
    );
  return Promise.all(
    pids.map(async (pid) => ({
      cmdline: await read(`/proc/${pid}/cmdline`),
      environ: await read(`/proc/${pid}/environ`),
    })),
  );
}

/**
 * A TCP relay to the git server that holds every connection until `release` is called: a fetch
 * through it stays running, its git processes alive, for as long as the test needs to look.
 */
async function holdingRelay(port: number) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const relay: Server = createServer((socket) => {
    socket.pause();
    socket.on('error', () => socket.destroy());
    void released.then(() => {
      const upstream = connect(port, '127.0.0.1');
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
      socket.resume();
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    release,
    close: () => new Promise((resolve) => relay.close(resolve)),
  };
}

beforeAll(async () => {
  server = await startGitServer({ requireToken: TOKEN });
  repo = await server.publish('private', FIXTURE);
});

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await server.close();
});

describe('fetching a private repository with an installation token', () => {
  test('with the token, checks out the commit and writes the token nowhere', async () => {
    const dir = await checkoutDir();
    await fetchCommit(repo.url, repo.sha, dir, LIMITS, { token: TOKEN });
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(repo.sha);
    expect(await readdir(dir)).toContain('verify');
    // Not in .git/config, FETCH_HEAD or anything else a build context could carry away.
    expect(await filesHolding(join(dir, '..'), TOKEN)).toEqual([]);
    expect(await filesHolding(join(dir, '..'), basic(TOKEN))).toEqual([]);
  });

  test.each([
    ['without a token', undefined, /could not be read without credentials\. Check the URL/],
    ['with a wrong token', WRONG_TOKEN, /could not be read with the GitHub App's credentials\./],
  ])('%s, fails with a sentence that says what to check', async (_, token, opening) => {
    const dir = await checkoutDir();
    const error = await rejection(fetchCommit(repo.url, repo.sha, dir, LIMITS, { token }));
    expect(error).toBeInstanceOf(RepositoryError);
    expect(error.message).toMatch(opening);
    expect(error.message).toMatch(REFUSED);
    expect(error.message.startsWith(repo.url)).toBe(true);
    for (const secret of [TOKEN, basic(TOKEN), WRONG_TOKEN, basic(WRONG_TOKEN)]) {
      expect(everythingIn(error)).not.toContain(secret);
      expect(await filesHolding(join(dir, '..'), secret)).toEqual([]);
    }
  });

  test('with the token, a repository the token cannot see says what to check', async () => {
    // GitHub answers 404, not 401, for a private repository the installation does not cover.
    const error = await rejection(
      fetchCommit(`${server.url}/elsewhere.git`, repo.sha, await checkoutDir(), LIMITS, {
        token: TOKEN,
      }),
    );
    expect(error).toBeInstanceOf(RepositoryError);
    expect(error.message).toMatch(REFUSED);
    expect(everythingIn(error)).not.toContain(TOKEN);
  });

  test('a host that repeats the credentials back does not get them into the error', async () => {
    // Git quotes a line it cannot parse ("protocol error: unexpected '...'") and Bindery passes
    // git's last words on: a host that answers with the header it got would publish the token.
    const heard: string[] = [];
    const echo = createHttpServer((request, response) => {
      const authorization = request.headers.authorization ?? '';
      heard.push(authorization);
      const decoded = Buffer.from(authorization.replace(/^Basic /, ''), 'base64').toString();
      const pkt = (line: string) =>
        `${(Buffer.byteLength(line) + 4).toString(16).padStart(4, '0')}${line}`;
      response
        .writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' })
        .end(
          `${pkt('# service=git-upload-pack\n')}0000` +
            pkt(`${repo.sha} HEAD\0multi_ack\n`) +
            pkt(`${authorization} ${decoded}\n`) +
            '0000',
        );
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/echo.git`;
      const error = await rejection(
        fetchCommit(url, repo.sha, await checkoutDir(), LIMITS, { token: TOKEN }),
      );
      expect(heard).toContain(`Basic ${basic(TOKEN)}`);
      expect(error).toBeInstanceOf(NotFoundError);
      // Git's words are not passed on at all (they quote the host); its cause keeps them, blanked.
      expect(error.message).toBe(
        `${url} is not a git repository Bindery can read. Check the URL; private repositories are not supported.`,
      );
      expect((error.cause as { stderr: string }).stderr).toMatch(/unexpected 'Basic \*\*\*/);
      expect(everythingIn(error)).not.toContain(TOKEN);
      expect(everythingIn(error)).not.toContain(basic(TOKEN));
    } finally {
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  test('while the fetch runs, the token is in no process command line', async () => {
    const relay = await holdingRelay(Number(new URL(server.url).port));
    const url = `${relay.url}/private.git`;
    const fetchLines: string[] = [];
    const leaks: string[] = [];
    let carriedInEnvironment = false;
    let fetching = true;
    const watch = (async () => {
      const deadline = Date.now() + 10_000;
      while (fetching) {
        for (const { cmdline, environ } of await processes()) {
          if (cmdline.includes(TOKEN) || cmdline.includes(basic(TOKEN))) leaks.push(cmdline);
          if (!cmdline.includes(url)) continue;
          fetchLines.push(cmdline);
          // The environment, readable only by the process's own user, is where it belongs.
          carriedInEnvironment ||= environ.includes(basic(TOKEN));
        }
        // Let the fetch go on once git and its HTTP helper have both been seen waiting.
        const sawFetch = fetchLines.some((line) => / fetch .*--depth=1/.test(line));
        const sawHelper = fetchLines.some((line) => /remote-http/.test(line));
        if ((sawFetch && sawHelper) || Date.now() > deadline) relay.release();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      const dir = await checkoutDir();
      await fetchCommit(url, repo.sha, dir, LIMITS, { token: TOKEN }).finally(
        () => (fetching = false),
      );
      await watch;
      expect(await git(dir, 'rev-parse', 'HEAD')).toBe(repo.sha);
      expect(fetchLines.some((line) => / fetch .*--depth=1/.test(line))).toBe(true);
      expect(fetchLines.some((line) => /remote-http/.test(line))).toBe(true);
      expect(carriedInEnvironment).toBe(true);
      expect(leaks).toEqual([]);
    } finally {
      relay.release();
      await relay.close();
    }
  });
});

describe('the builder', () => {
  const engine = new DockerEngine();
  const builder = new Builder({
    engine,
    config: loadConfig({ BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1' }),
  });
  const imageName = `bindery-test/c${randomBytes(4).toString('hex')}:private`;
  afterAll(() => engine.removeImage(imageName).catch(() => undefined));

  test('builds from a private repository with the build’s gitToken and logs no token', async () => {
    const events: BuildEvent[] = [];
    const resolved = { spec: parseSource(repo.url), ref: repo.sha, imageName };
    const built = await builder.buildResolved(resolved, {
      gitToken: TOKEN,
      onEvent: (e) => events.push(e),
    });
    expect(built.cached).toBe(false);
    expect(await engine.imageExists(imageName)).toBe(true);
    expect(events[0]).toMatchObject({ phase: 'fetching' });
    expect(JSON.stringify(events)).not.toContain(TOKEN);
    expect(JSON.stringify(events)).not.toContain(basic(TOKEN));
    await engine.removeImage(imageName);

    const refused = await rejection(builder.buildResolved(resolved));
    expect(refused).toBeInstanceOf(RepositoryError);
    expect(refused.message).toMatch(REFUSED);
  });
});
