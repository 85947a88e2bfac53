import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotFoundError, RepositoryError } from '../../src/errors.js';
import { fetchCommit } from '../../src/repos/fetch-commit.js';
import { resolveRef } from '../../src/repos/resolve-ref.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';

const MiB = 2 ** 20;
const LIMITS = { timeoutMs: 60_000, maxBytes: 2 ** 30 };
const SHA = 'c0ffee'.padEnd(40, '0');

/** Runs git in `cwd` with `input` on stdin; returns its trimmed stdout. */
function gitWithInput(cwd: string, input: string, ...args: string[]): string {
  const result = spawnSync('git', args, {
    cwd,
    input,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'Bomb',
      GIT_AUTHOR_EMAIL: 'bomb@bindery.invalid',
      GIT_COMMITTER_NAME: 'Bomb',
      GIT_COMMITTER_EMAIL: 'bomb@bindery.invalid',
    },
  });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

/**
 * A repository of identical nested trees: one blob, a tree of `width` entries pointing at it,
 * and `depth` more levels of trees of `width` entries each pointing at the level below. Its
 * pack holds depth + 2 objects; its checkout would hold width^(depth + 1) files.
 */
function publishTreeBomb(root: string, name: string, width: number, depth: number): string {
  const repo = join(root, `${name}.git`);
  gitWithInput(root, '', 'init', '--quiet', '--bare', '--initial-branch=main', repo);
  let entry = `100644 blob ${gitWithInput(repo, 'x\n', 'hash-object', '-w', '--stdin')}`;
  for (let level = 0; level <= depth; level++) {
    const lines = Array.from({ length: width }, (_, i) => `${entry}\te${i}`).join('\n');
    entry = `040000 tree ${gitWithInput(repo, `${lines}\n`, 'mktree')}`;
  }
  const tree = entry.split(' ')[2]!;
  const commit = gitWithInput(repo, 'bomb\n', 'commit-tree', tree);
  gitWithInput(repo, '', 'update-ref', 'refs/heads/main', commit);
  return commit;
}

/**
 * A git host of smart HTTP that answers every ref listing with `count` refs, the i-th named
 * `name` with `{i}` replaced by i, in protocol v0 (a server may ignore the client's wish for v2
 * and its ref prefixes), streamed as it is generated. It runs in a process of its own: the
 * hundreds of megabytes of strings it makes would otherwise count in this process's memory,
 * which the tests watch for Bindery's side of the fetch.
 */
const REF_FLOOD = `
const http = require('node:http');
const [count, name, sha] = [Number(process.argv[1]), process.argv[2], process.argv[3]];
const pkt = (payload) => (payload.length + 4).toString(16).padStart(4, '0') + payload;
const server = http.createServer((request, response) => {
  response.writeHead(200, {
    'content-type': 'application/x-git-upload-pack-advertisement',
    'cache-control': 'no-cache',
  });
  response.write(pkt('# service=git-upload-pack\\n') + '0000');
  response.write(pkt(sha + ' HEAD\\0symref=HEAD:refs/heads/main agent=git/flood\\n'));
  let i = 0;
  const pump = () => {
    while (i < count) {
      let batch = '';
      for (const end = Math.min(count, i + 2000); i < end; i++)
        batch += pkt(sha + ' ' + name.replace('{i}', i) + '\\n');
      if (!response.write(batch)) return void response.once('drain', pump);
    }
    response.end('0000');
  };
  response.on('error', () => {});
  request.socket.on('error', () => {});
  pump();
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function startRefFlood(count: number, name: string) {
  const child = spawn(process.execPath, ['-e', REF_FLOOD, String(count), name, SHA], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const exited = once(child, 'exit');
  return {
    url: `http://127.0.0.1:${line.toString().trim()}/flood.git`,
    close: async () => {
      child.kill();
      await exited;
    },
  };
}

/**
 * Runs `attempt`, watching this process: how long it took, how far its resident memory grew
 * above where it started, and whether anything was thrown or rejected uncaught meanwhile.
 */
async function watch<T>(attempt: () => Promise<T>) {
  const baseline = process.memoryUsage().rss;
  let rssGrowth = 0;
  const sampler = setInterval(() => {
    rssGrowth = Math.max(rssGrowth, process.memoryUsage().rss - baseline);
  }, 20);
  const uncaught: unknown[] = [];
  const record = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', record).on('unhandledRejection', record);
  const started = Date.now();
  try {
    const outcome = await attempt().then(
      (value) => ({ value, error: undefined }),
      (error: unknown) => ({ value: undefined, error }),
    );
    return { ...outcome, seconds: (Date.now() - started) / 1000, rssGrowth, uncaught };
  } finally {
    clearInterval(sampler);
    process.off('uncaughtException', record).off('unhandledRejection', record);
  }
}

let server: GitServer;
const dirs: string[] = [];
const checkoutDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bindery-bomb-'));
  dirs.push(dir);
  return join(dir, 'repo');
};

beforeAll(async () => {
  server = await startGitServer();
});
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await server?.close();
});

describe('a repository of identical nested trees (a git bomb)', () => {
  it('is refused with a sentence within 10 s, its files counted as ls-tree streams', async () => {
    // 32^7 ≈ 34 billion files from eight objects.
    const sha = publishTreeBomb(server.root, 'bomb', 32, 6);
    const packs = join(server.root, 'bomb.git', 'objects');
    const dir = await checkoutDir();
    const outcome = await watch(() => fetchCommit(`${server.url}/bomb.git`, sha, dir, LIMITS));
    expect(outcome.error).toBeInstanceOf(RepositoryError);
    expect((outcome.error as Error).message).toMatch(
      new RegExp(
        `^${server.url}/bomb\\.git at ${sha.slice(0, 12)} holds more files than this service's limit of [\\d,]+; Bindery builds repositories with fewer files\\.$`,
      ),
    );
    expect(outcome.seconds).toBeLessThan(10);
    expect(outcome.rssGrowth).toBeLessThan(100 * MiB);
    expect(outcome.uncaught).toEqual([]);
    // Nothing was checked out.
    await expect(stat(join(dir, 'e0'))).rejects.toThrow(/ENOENT/);
    expect((await stat(packs)).isDirectory()).toBe(true);
  }, 60_000);
});

describe('a server that advertises millions of refs', () => {
  it('is refused with a sentence when none of them is the ref asked for, git held to its memory limit', async () => {
    const flood = await startRefFlood(2_000_000, 'refs/heads/b{i}');
    try {
      const outcome = await watch(() => resolveRef(flood.url, 'main', 60_000));
      expect(outcome.error).toBeInstanceOf(RepositoryError);
      expect((outcome.error as Error).message).toBe(
        `${flood.url} lists more refs than Bindery reads; Bindery builds repositories with fewer branches and tags.`,
      );
      expect(outcome.seconds).toBeLessThan(10);
      expect(outcome.rssGrowth).toBeLessThan(100 * MiB);
      expect(outcome.uncaught).toEqual([]);
    } finally {
      await flood.close();
    }
  }, 60_000);

  it('a fetch of a commit (no ref to list) from an endless listing is refused the same way', async () => {
    const flood = await startRefFlood(Infinity, 'refs/heads/b{i}');
    try {
      const dir = await checkoutDir();
      const outcome = await watch(() => fetchCommit(flood.url, SHA, dir, LIMITS));
      expect(outcome.error).toBeInstanceOf(RepositoryError);
      expect((outcome.error as Error).message).toBe(
        `${flood.url} sent more than Bindery reads before a single file (its list of refs, most likely); Bindery builds repositories with fewer branches and tags.`,
      );
      expect(outcome.seconds).toBeLessThan(10);
      expect(outcome.rssGrowth).toBeLessThan(100 * MiB);
      expect(outcome.uncaught).toEqual([]);
    } finally {
      await flood.close();
    }
  }, 60_000);

  it('a few thousand refs, none of them the ref asked for, still end in "no branch or tag"', async () => {
    const flood = await startRefFlood(5_000, 'refs/heads/b{i}');
    try {
      await expect(resolveRef(flood.url, 'main', 60_000)).rejects.toThrow(
        new NotFoundError(`${flood.url} has no branch or tag named "main".`),
      );
    } finally {
      await flood.close();
    }
  });

  it('is refused with a sentence when millions of refs answer to the name asked for', async () => {
    const flood = await startRefFlood(2_000_000, 'refs/pull/{i}/refs/heads/main');
    try {
      const outcome = await watch(() => resolveRef(flood.url, 'main', 60_000));
      expect(outcome.error).toBeInstanceOf(RepositoryError);
      expect((outcome.error as Error).message).toMatch(
        new RegExp(
          `^${flood.url} lists more refs than Bindery reads; Bindery builds repositories with fewer branches and tags\\.$`,
        ),
      );
      expect(outcome.seconds).toBeLessThan(10);
      expect(outcome.rssGrowth).toBeLessThan(100 * MiB);
      expect(outcome.uncaught).toEqual([]);
    } finally {
      await flood.close();
    }
  }, 60_000);
});
