import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import type { ContainerEngine } from '../../src/engine/container-engine.js';
import { fetchCommit } from '../../src/repos/fetch-commit.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { resolveRef } from '../../src/repos/resolve-ref.js';
import { freePort } from '../helpers/free-port.js';
import { startNetnsTarget, type NetnsTarget } from '../helpers/netns-target.js';

/**
 * A "public" address this test owns: 192.88.99.0/24 (the retired 6to4 relay block) is no
 * private range, so the host guard lets it through, and a network namespace on this machine
 * answers it, so nothing leaves the machine.
 */
const PUBLIC_ADDRESS = '192.88.99.2';
const SECRET = `internal-secret-${randomBytes(6).toString('hex')}`;
const SHA = 'd'.repeat(40);
/** The attacker's DNS: a public address for the guard; git's own lookup of `localhost` says 127.0.0.1. */
const lookup = async () => [{ address: PUBLIC_ADDRESS }];
const engine = { imageExists: async () => false } as unknown as ContainerEngine;

let port: number;
let internal: Server;
let target: NetnsTarget | undefined;
/** Requests that reached the service on 127.0.0.1 that only the host itself should reach. */
const reached: string[] = [];

/** pkt-line framing of git's smart HTTP. */
const pkt = (payload: string) => `${(payload.length + 4).toString(16).padStart(4, '0')}${payload}`;

beforeAll(async () => {
  port = await freePort();
  // An internal service that happens to speak enough git to get its words into git's error.
  internal = createServer((request, response) => {
    reached.push(`${request.method} ${request.url}`);
    response
      .writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' })
      .end(`${pkt('# service=git-upload-pack\n')}0000${pkt(`ERR ${SECRET}\n`)}`);
  });
  await new Promise<void>((resolve) => internal.listen(port, '127.0.0.1', resolve));
  target = await startNetnsTarget({
    name: 'bnd-pin',
    hostAddress: '192.88.99.1',
    address: PUBLIC_ADDRESS,
    prefix: 30,
    ports: [port],
  });
}, 30_000);

afterAll(async () => {
  await target?.close();
  internal.closeAllConnections();
  await new Promise((resolve) => internal.close(resolve));
}, 30_000);

/**
 * Whether git talked to the namespace's server, the vetted address: it answers a line that is
 * no HTTP, and curl says so. Git's words stay in the error's cause, for logs.
 */
const reachedVettedAddress = (error: Error) =>
  /Received HTTP\/0\.9/.test((error.cause as { stderr?: string } | undefined)?.stderr ?? '');

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => new Error('it succeeded'),
    (error: Error) => error,
  );

describe('DNS rebinding between the host guard and git', () => {
  it('git connects to the address the guard vetted when it resolves a ref', async () => {
    reached.length = 0;
    const builder = new Builder({ engine, config: loadConfig({}), lookup });
    const error = await rejection(
      builder.resolve(parseSource(`http://localhost:${port}/repo.git`, 'main')),
    );
    expect(reached).toEqual([]);
    expect(reachedVettedAddress(error)).toBe(true);
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain('bindery-target');
    expect(error.message).toMatch(/^http:\/\/localhost:\d+\/repo\.git /);
  }, 60_000);

  it('and when it fetches the commit, in the same process, after the guard', async () => {
    reached.length = 0;
    const builder = new Builder({ engine, config: loadConfig({}), lookup });
    const resolved = await builder.resolve(
      parseSource(`http://localhost:${port}/fetched.git`, SHA),
    );
    const error = await rejection(builder.buildResolved(resolved));
    expect(reached).toEqual([]);
    expect(reachedVettedAddress(error)).toBe(true);
    expect(error.message).not.toContain(SECRET);
  }, 60_000);

  it('and when a fetch or ref lookup is given the guard itself (a worker of its own)', async () => {
    reached.length = 0;
    const guard = { allowedHosts: [], lookup };
    const dir = await mkdtemp(join(tmpdir(), 'bindery-pin-'));
    try {
      const url = `http://localhost:${port}/worker.git`;
      const fetched = await rejection(
        fetchCommit(
          url,
          SHA,
          join(dir, 'repo'),
          { timeoutMs: 30_000, maxBytes: 2 ** 30 },
          { guard },
        ),
      );
      const listed = await rejection(resolveRef(url, 'main', 30_000, { guard }));
      expect(reached).toEqual([]);
      for (const error of [fetched, listed]) {
        expect(reachedVettedAddress(error)).toBe(true);
        expect(error.message).not.toContain(SECRET);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("git's error text", () => {
  it('never repeats what a host answered, even one the operator allows', async () => {
    reached.length = 0;
    const builder = new Builder({
      engine,
      config: loadConfig({ BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1' }),
    });
    const url = `http://127.0.0.1:${port}/repo.git`;
    const error = await rejection(builder.resolve(parseSource(url, 'main')));
    expect(reached.length).toBeGreaterThan(0);
    expect(error.message).toBe(
      `${url} is not a git repository Bindery can read. Check the URL; private repositories are not supported.`,
    );
  }, 60_000);
});
