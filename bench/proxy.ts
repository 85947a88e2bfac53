/**
 * Proxy benchmark (issue: the launch service, "the proxy's own overhead per request"). On one
 * real session, GET /user/<name>/api/status?token=… directly from the container and through
 * the proxy, which runs in a process of its own (this script forked) as it does in a web
 * process: RedisRouteTable with its cache, activity written to Redis at most once a second.
 * - latency: REQUESTS sequential requests each way, alternating, after a warm-up; median, p95;
 * - throughput: LOAD requests each way at CONCURRENCY.
 * Figures and the machine are written to BENCHMARKS.md between markers.
 *
 *   npm run bench:proxy            (REQUESTS=500 LOAD=2000 CONCURRENCY=8 to change them)
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Builder } from '../src/build/builder.js';
import { loadConfig } from '../src/config.js';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { RedisRouteTable } from '../src/proxy/redis-route-table.js';
import { createReverseProxy } from '../src/proxy/reverse-proxy.js';
import { parseSource } from '../src/repos/repo-spec.js';
import { startSession, waitForJupyter } from '../src/sessions/start-session.js';
import { machine, percentile, writeSection } from './report.js';

const bounded = (value: string | undefined, fallback: number, max: number) =>
  Math.min(Math.max(Number(value ?? fallback) || fallback, 1), max);
const REQUESTS = bounded(process.env.REQUESTS, 500, 5_000);
const LOAD = bounded(process.env.LOAD, 2_000, 20_000);
const CONCURRENCY = bounded(process.env.CONCURRENCY, 8, 64);
const WARM_UP = 50;
const ROOT = join(import.meta.dirname, '..');

const ms = (value: number) => `${value.toFixed(2)} ms`;

/** The proxy's process: routes from Redis, activity to Redis, a server on loopback. */
async function serveProxy(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  const proxy = createReverseProxy({
    routes: new RedisRouteTable(redis, { prefix }),
    onActivity: (session, at) =>
      redis.hset(`${prefix}:activity`, session, String(at)).then(() => undefined),
  });
  const server = createServer((request, response) => proxy.handleRequest(request, response));
  server.on('upgrade', (request, socket, head) => proxy.handleUpgrade(request, socket, head));
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
  process.once('disconnect', () => {
    proxy.close();
    server.close();
    void redis.quit();
  });
}

/** One GET with a keep-alive agent; resolves with its duration in ms, rejects unless 200. */
function timedGet(url: string, agent: Agent): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    get(url, { agent }, (response) => {
      response.resume();
      response.on('end', () =>
        response.statusCode === 200
          ? resolve(performance.now() - started)
          : reject(new Error(`${url.split('?')[0]} answered ${response.statusCode}`)),
      );
    }).on('error', reject);
  });
}

/** `total` requests, `concurrency` at a time; requests per second. */
async function throughput(url: string, total: number, concurrency: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued++ < total) await timedGet(url, agent);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return total / seconds;
}

async function measure(direct: string, proxied: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < WARM_UP; i++) {
    await timedGet(direct, agent);
    await timedGet(proxied, agent);
  }
  const latency = { direct: [] as number[], proxied: [] as number[] };
  for (let i = 0; i < REQUESTS; i++) {
    // Alternating, so drift in the machine's load falls on both alike.
    latency.direct.push(await timedGet(direct, agent));
    latency.proxied.push(await timedGet(proxied, agent));
  }
  agent.destroy();
  await throughput(proxied, WARM_UP * CONCURRENCY, CONCURRENCY);
  const rps = {
    direct: await throughput(direct, LOAD, CONCURRENCY),
    proxied: await throughput(proxied, LOAD, CONCURRENCY),
  };
  return { latency, rps };
}

function report(figures: Awaited<ReturnType<typeof measure>>, measuredOn: string): string {
  const { latency, rps } = figures;
  const row = (label: string, values: number[], perSecond: number) =>
    `| ${label} | ${ms(percentile(values, 50))} | ${ms(percentile(values, 95))} | ${Math.round(perSecond)} |`;
  const overhead = (p: number) =>
    `+${ms(percentile(latency.proxied, p) - percentile(latency.direct, p))}`;
  const lost = ((1 - rps.proxied / rps.direct) * 100).toFixed(0);
  return [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${measuredOn}.`,
    `\`npm run bench:proxy\`: ${REQUESTS} sequential requests each way, alternating; then ${LOAD} each way at concurrency ${CONCURRENCY}.`,
    '',
    `| \`GET /user/<name>/api/status\` | median | p95 | requests/s (concurrency ${CONCURRENCY}) |`,
    '|---|---|---|---|',
    row('direct to the container', latency.direct, rps.direct),
    row('through the proxy', latency.proxied, rps.proxied),
    `| the proxy's overhead | ${overhead(50)} | ${overhead(95)} | ${lost}% fewer |`,
  ].join('\n');
}

const ABOUT = `\`bench/proxy.ts\` starts one session of \`test/fixtures/repos/default\` and asks its Jupyter
for \`api/status\` (a small JSON answer) directly at the container's address and through the
proxy. The proxy runs in a Node process of its own, as in a web process: routes from Redis
through \`RedisRouteTable\`'s cache, keep-alive connections to the session, activity written to
Redis at most once a second. Both clients use keep-alive too, so the overhead is the proxy's
work per request (parse, route lookup, forward, stream back), not a TCP handshake. The client,
the proxy and Jupyter (limited to 1 CPU) share the machine's CPUs.`;

async function main(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const config = loadConfig({ BINDERY_IMAGE_PREFIX: `bindery-bench/p${run}-` });
  const prefix = `bindery-bench-${run}`;
  const engine = new DockerEngine();
  const redis = new Redis(config.redisUrl);
  const spec = parseSource(join(ROOT, 'test/fixtures/repos/default'));
  const { imageName } = await new Builder({ engine, config }).build(spec);
  const session = await startSession({ engine, config, imageName, repoLabel: spec.repoLabel });
  const child = fork(fileURLToPath(import.meta.url), ['serve-proxy', config.redisUrl, prefix]);
  try {
    await waitForJupyter(session.url, session.token);
    const name = session.container.name;
    await new RedisRouteTable(redis, { prefix }).set(name, {
      target: `http://${session.container.address}:8888`,
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (message) => resolve(Number(message)));
      child.once('exit', (code) => reject(new Error(`the proxy process exited (${code})`)));
    });
    const path = `/user/${name}/api/status?token=${session.token}`;
    const figures = await measure(
      `http://${session.container.address}:8888${path}`,
      `http://127.0.0.1:${port}${path}`,
    );
    console.log(await writeSection('proxy', 'Proxy', ABOUT, report(figures, await machine())));
  } finally {
    if (child.connected) child.disconnect();
    await engine.removeContainer(session.container.id);
    await engine.removeImage(imageName);
    await redis.del(`${prefix}:routes`, `${prefix}:activity`);
    await redis.quit();
  }
}

if (process.argv[2] === 'serve-proxy') await serveProxy(process.argv[3]!, process.argv[4]!);
else await main();
