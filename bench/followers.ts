/**
 * Followers benchmark. The web role of a service in a process of its own (no build worker, so
 * the builds it queues stay queued), FOLLOWERS clients following BUILDS builds' event streams
 * at once, and GET /health every 50 ms: for SECONDS with no client (the machine's own noise),
 * while the clients open their streams (each one a launch: the ref resolved, the build queued)
 * and for SECONDS while all of them follow. Reports the
 * probes' median, p99 and max against the 200 ms target, and the service's Redis connections
 * (CLIENT LIST, by the connection name the service is given) before and while they follow.
 * Prints its table; it writes no file.
 *
 *   npm run bench:followers         (FOLLOWERS=500 BUILDS=5 SECONDS=10 to change them)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { BuildLog } from '../src/queue/build-log.js';
import { readEventStream } from '../test/helpers/event-stream.js';
import { freePort } from '../test/helpers/free-port.js';
import { startGitServer } from '../test/helpers/git-server.js';
import { machine, median, percentile } from './report.js';

const ROOT = join(import.meta.dirname, '..');
const FOLLOWERS = Number(process.env.FOLLOWERS ?? 500) || 500;
const BUILDS = Number(process.env.BUILDS ?? 5) || 5;
const SECONDS = Number(process.env.SECONDS_FOLLOWING ?? process.env.SECONDS ?? 10) || 10;
const TARGET_MS = 200;

async function main(): Promise<void> {
  const namespace = `benchfollow${randomBytes(4).toString('hex')}`;
  const prefix = `bindery-bench/${namespace}-`;
  const connectionName = `bindery-${namespace}`;
  const redis = new Redis();
  const git = await startGitServer();
  const repo = await git.publish('followed', join(ROOT, 'test/fixtures/repos/default'));
  const specs: string[] = [];
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
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'test/helpers/web-service-process.ts'),
      namespace,
      JSON.stringify(settings),
      'loop-delay',
    ],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const connections = async () =>
    ((await redis.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` name=${connectionName} `)).length;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const ready = /^ready (\S+)$/m.exec(output);
        if (ready) resolve(ready[1]!);
      });
      child.once('exit', (code) => reject(new Error(`the service exited with ${code}`)));
    });
    await (await fetch(`${url}/health`)).arrayBuffer();
    const before = await connections();

    const probes = new Map<string, number[]>([
      ['idle', []],
      ['opening', []],
      ['following', []],
    ]);
    let stage = 'idle';
    let probing = true;
    let unanswered = 0;
    const prober = (async () => {
      while (probing) {
        const during = stage;
        const started = performance.now();
        const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) })
          .then(async (response) => (await response.arrayBuffer(), response.ok))
          .catch(() => false);
        if (ok) probes.get(during)!.push(performance.now() - started);
        else unanswered++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    // The same probes with no client at all, to tell the followers' cost from the machine's noise.
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    stage = 'opening';
    process.stderr.write(`-- ${stage}\n`);
    const opening = performance.now();
    const clients: Promise<unknown>[] = [];
    for (let wave = 0; wave < FOLLOWERS; wave += 50) {
      const following: Promise<void>[] = [];
      for (let i = wave; i < Math.min(FOLLOWERS, wave + 50); i++) {
        let followed!: () => void;
        following.push(new Promise<void>((resolve) => (followed = resolve)));
        clients.push(
          readEventStream(`${url}/build/${specs[i % BUILDS]}`, { onEvent: () => followed() })
            .catch(() => undefined)
            .finally(() => followed()),
        );
      }
      await Promise.all(following);
    }
    const openedMs = performance.now() - opening;
    stage = 'following';
    process.stderr.write(`-- ${stage}\n`);
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    const during = await connections();
    probing = false;
    await prober;

    const log = new BuildLog(redis);
    for (const key of await redis.keys(`build:${prefix}*`)) {
      await log.append(key.slice('build:'.length), { phase: 'failed', message: 'Ended.\n' });
    }
    await Promise.all(clients);

    const row = (what: string, values: number[]) =>
      `| ${what} | ${values.length} | ${median(values).toFixed(0)} ms | ${percentile(values, 99).toFixed(0)} ms | ${Math.max(...values).toFixed(0)} ms |`;
    console.log(
      [
        `Followers: ${FOLLOWERS} clients on ${BUILDS} queued builds, on ${await machine()}`,
        `Opened in ${(openedMs / 1000).toFixed(1)} s; Redis connections of the service: ${before} before, ${during} while ${FOLLOWERS} follow.`,
        '',
        '| /health while | probes | median | p99 | max |',
        '|---|---|---|---|---|',
        row('no client (the machine alone)', probes.get('idle')!),
        row('clients open streams (launches)', probes.get('opening')!),
        row(`${FOLLOWERS} clients follow (${SECONDS} s)`, probes.get('following')!),
        '',
        `Unanswered probes: ${unanswered}. Target: /health within ${TARGET_MS} ms while they follow: ${
          Math.max(...probes.get('following')!) <= TARGET_MS ? 'met' : 'NOT met'
        } (max); p99 ${percentile(probes.get('following')!, 99) <= TARGET_MS ? 'met' : 'NOT met'}.`,
      ].join('\n'),
    );
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    const keys = [
      ...(await redis.keys(`${namespace}:*`)),
      ...(await redis.keys(`bull:*${namespace}*`)),
      ...(await redis.keys(`build:${prefix}*`)),
    ];
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await git.close();
  }
}

await main();
