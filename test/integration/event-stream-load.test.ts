import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { BuildLog } from '../../src/queue/build-log.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { removeTestSandbox, testSessionNetwork } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = join(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'test/fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const namespace = `evload${run}`;
const prefix = `bindery-test/${namespace}-`;
// Every connection the service opens carries this name (ioredis takes options from the URL's
// query, and duplicates keep them), so CLIENT LIST tells its connections from other tests'.
const connectionName = `bindery-${namespace}`;
/** The service's sandbox network: its bridge and firewall chain are this file's. */
const network = testSessionNetwork(namespace);
const CLIENTS = 500;
const BUILDS = 5;

const redis = new Redis();
let git: GitServer;
let child: ChildProcess | undefined;
let serviceUrl: string;
let specs: string[];

/** The service's connections to Redis, and everyone's, as Redis counts them. */
async function redisConnections(): Promise<{ service: number; total: number }> {
  const lines = ((await redis.client('LIST')) as string).split('\n').filter(Boolean);
  return {
    service: lines.filter((line) => line.includes(` name=${connectionName} `)).length,
    total: lines.length,
  };
}

beforeAll(async () => {
  git = await startGitServer();
  const repo = await git.publish('followed', FIXTURE);
  specs = [];
  // One build per group of followers, and two more for the slow and the leaving clients.
  for (let i = 0; i < BUILDS + 2; i++) {
    await git.commit('followed', { [`build-${i}.txt`]: `${i}\n` }, `v${i}`);
    specs.push(`git/${encodeURIComponent(repo.url)}/v${i}`);
  }
  const port = await freePort();
  const settings = {
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_IMAGE_PREFIX: prefix,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_LAUNCH_RATE_LIMIT: '0',
    BINDERY_SESSION_NETWORK: network,
    REDIS_URL: `redis://127.0.0.1:6379/0?connectionName=${connectionName}`,
  };
  const started = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'test/helpers/web-service-process.ts'),
      namespace,
      JSON.stringify(settings),
    ],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  child = started;
  serviceUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    started.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /^ready (\S+)$/m.exec(output);
      if (ready) resolve(ready[1]!);
    });
    started.once('exit', (code) => reject(new Error(`the service exited with ${code}`)));
  });
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  const keys = [
    ...(await redis.keys(`${namespace}:*`)),
    ...(await redis.keys(`bull:*${namespace}*`)),
    ...(await redis.keys(`build:${prefix}*`)),
  ];
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await git?.close();
  await removeTestSandbox(loadConfig({ BINDERY_SESSION_NETWORK: network }));
}, 60_000);

/**
 * GET /health every 100 ms until `signal` aborts: each probe's status, milliseconds, and what
 * the clients were doing (`stage()`) when it was sent.
 */
async function probeHealth(signal: AbortSignal, stage: () => string) {
  const probes: { status: number; ms: number; stage: string }[] = [];
  while (!signal.aborted) {
    const started = performance.now();
    const during = stage();
    const status = await fetch(`${serviceUrl}/health`, { signal: AbortSignal.timeout(10_000) })
      .then(async (response) => {
        await response.arrayBuffer();
        return response.status;
      })
      .catch(() => 0);
    probes.push({ status, ms: performance.now() - started, stage: during });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return probes;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

test(`${CLIENTS} clients following ${BUILDS} queued builds share a fixed number of Redis connections, and /health answers throughout`, async () => {
  const before = await redisConnections();
  // A load balancer probes all along; the first answer is the one that runs the checks.
  expect((await fetch(`${serviceUrl}/health`)).status).toBe(200);
  const probing = new AbortController();
  let stage = 'opening';
  const health = probeHealth(probing.signal, () => stage);

  // Clients join in waves, each waiting until its stream has said `waiting`, so that all of
  // them are following at once when the connections are counted.
  const clients: Promise<StreamEvent[]>[] = [];
  for (let wave = 0; wave < CLIENTS; wave += 50) {
    const following: Promise<unknown>[] = [];
    for (let i = wave; i < Math.min(CLIENTS, wave + 50); i++) {
      let followed!: () => void;
      following.push(new Promise<void>((resolve) => (followed = resolve)));
      clients.push(
        readEventStream(`${serviceUrl}/build/${specs[i % BUILDS]}`, { onEvent: () => followed() })
          .then(({ events }) => events)
          .finally(() => followed()),
      );
    }
    await Promise.all(following);
  }
  // All following, none launching: what 500 waiting visitors cost the service.
  stage = 'following';
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const during = await redisConnections();
  stage = 'ending';

  // The builds go on: every follower sees the same events, in order, and its stream ends.
  const imageNames = (await redis.keys(`build:${prefix}*`)).map((key) =>
    key.slice('build:'.length),
  );
  expect(imageNames).toHaveLength(BUILDS);
  const log = new BuildLog(redis);
  for (const imageName of imageNames) {
    await log.append(imageName, { phase: 'fetching', message: 'Fetching...\n' });
    await log.append(imageName, { phase: 'failed', message: 'The build failed.\n' });
  }
  const streams = await Promise.all(clients);
  probing.abort();
  const probes = await health;
  await waitFor(
    async () => (await redisConnections()).service <= before.service,
    'the followers to give their connections back',
    10_000,
  );

  const summary = (stage: string) => {
    const latencies = probes.filter((probe) => probe.stage === stage).map((probe) => probe.ms);
    if (latencies.length === 0) return `${stage}: no probe ended`;
    return `${stage}: ${latencies.length} probes, median ${percentile(latencies, 0.5).toFixed(0)} ms, p99 ${percentile(latencies, 0.99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`;
  };
  console.log(
    `Redis connections of the service: ${before.service} before, ${during.service} with ${CLIENTS} followers ` +
      `(all clients of Redis: ${before.total} before, ${during.total} during); /health while clients were ` +
      ['opening', 'following', 'ending'].map(summary).join('; '),
  );
  for (const events of streams) {
    expect(events.map((event) => event.phase)).toEqual(['waiting', 'fetching', 'failed']);
  }
  // One blocking reader for all followers, whatever their number.
  expect(during.service).toBeLessThanOrEqual(before.service + 2);
  expect(probes.every((probe) => probe.status === 200)).toBe(true);
}, 300_000);

/** The service process's resident memory, in bytes. */
async function serviceMemory(): Promise<number> {
  const status = await readFile(`/proc/${child!.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) * 1024;
}

const MiB = 2 ** 20;

test("a client that stops reading holds back its own stream, not the service's memory, and misses nothing", async () => {
  const url = new URL(`${serviceUrl}/build/${specs[BUILDS]}`);
  const socket = connect(Number(url.port), url.hostname);
  socket.write(
    `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  let received = '';
  /** Resolves once `text` has arrived, looking only at what came since it was called. */
  const arrived = (text: string) =>
    new Promise<void>((resolve) => {
      let from = 0;
      const look = () => {
        if (received.indexOf(text, Math.max(0, from - text.length)) < 0) {
          from = received.length;
          return;
        }
        socket.off('data', take);
        resolve();
      };
      const take = (chunk: Buffer) => {
        received += chunk.toString();
        look();
      };
      socket.on('data', take);
      look();
    });
  await arrived('"phase":"waiting"');
  socket.pause();
  const imageName = await newestBuild();

  // 64 MiB of build output, written while the client reads nothing.
  const before = await serviceMemory();
  const log = new BuildLog(redis);
  const line = `${'x'.repeat(16 * 1024 - 1)}\n`;
  for (let i = 0; i < 4_000; i++) {
    await log.append(imageName, { phase: 'building', message: line });
  }
  await log.append(imageName, { phase: 'failed', message: 'The build failed.\n' });
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const grown = (await serviceMemory()) - before;
  console.log(
    `A client reading nothing of 64 MiB of log grew the service by ${(grown / MiB).toFixed(1)} MiB`,
  );

  // Once it reads again it gets every event, in order, to the end.
  socket.resume();
  await arrived('"phase":"failed"');
  socket.destroy();
  const phases = [...received.matchAll(/^data: \{"phase":"(\w+)"/gm)].map((match) => match[1]);
  expect(phases).toEqual(['waiting', ...Array<string>(4_000).fill('building'), 'failed']);
  expect(grown).toBeLessThan(16 * MiB);
}, 180_000);

test('followers that leave give the shared connection back at once', async () => {
  const before = await redisConnections();
  const leaving = new AbortController();
  const clients = Array.from({ length: 20 }, () =>
    readEventStream(`${serviceUrl}/build/${specs[BUILDS + 1]}`, { signal: leaving.signal }).catch(
      () => undefined,
    ),
  );
  await waitFor(
    async () => (await redisConnections()).service > before.service,
    'the followers to start reading',
    60_000,
  );
  leaving.abort();
  await Promise.all(clients);
  await waitFor(
    async () => (await redisConnections()).service <= before.service,
    'the followers to give the connection back',
    2_000,
  );
}, 120_000);

/** The image name of the build launched last: the one whose log holds only `waiting`. */
async function newestBuild(): Promise<string> {
  for (const key of await redis.keys(`build:${prefix}*`)) {
    if ((await redis.xlen(key)) === 1) return key.slice('build:'.length);
  }
  throw new Error('no build waits');
}
