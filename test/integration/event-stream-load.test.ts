import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { BuildLog } from '../../src/queue/build-log.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = join(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'test/fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const namespace = `evload${run}`;
const prefix = `bindery-test/${namespace}-`;
// Every connection the service opens carries this name (ioredis takes options from the URL's
// query, and duplicates keep them), so CLIENT LIST tells its connections from other tests'.
const connectionName = `bindery-${namespace}`;
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
  for (let i = 0; i < BUILDS; i++) {
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
}, 60_000);

/** GET /health every 100 ms until `signal` aborts: each probe's status and milliseconds. */
async function probeHealth(signal: AbortSignal) {
  const probes: { status: number; ms: number }[] = [];
  while (!signal.aborted) {
    const started = performance.now();
    const status = await fetch(`${serviceUrl}/health`, { signal: AbortSignal.timeout(10_000) })
      .then(async (response) => {
        await response.arrayBuffer();
        return response.status;
      })
      .catch(() => 0);
    probes.push({ status, ms: performance.now() - started });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return probes;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

test(`${CLIENTS} clients following ${BUILDS} queued builds share a fixed number of Redis connections, and /health answers throughout`, async () => {
  const before = await redisConnections();
  const probing = new AbortController();
  const health = probeHealth(probing.signal);

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
  await new Promise((resolve) => setTimeout(resolve, 500));
  const during = await redisConnections();

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

  const latencies = probes.map((probe) => probe.ms);
  console.log(
    `Redis connections of the service: ${before.service} before, ${during.service} with ${CLIENTS} followers ` +
      `(all clients: ${before.total} before, ${during.total} during); ` +
      `/health: ${probes.length} probes, median ${percentile(latencies, 0.5).toFixed(0)} ms, ` +
      `p99 ${percentile(latencies, 0.99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
  );
  for (const events of streams) {
    expect(events.map((event) => event.phase)).toEqual(['waiting', 'fetching', 'failed']);
  }
  // One blocking reader for all followers, whatever their number.
  expect(during.service).toBeLessThanOrEqual(before.service + 2);
  expect(probes.every((probe) => probe.status === 200)).toBe(true);
}, 300_000);
