/**
 * Density benchmark: how many idle sessions one machine holds, and how many builds a core runs.
 * - Sessions: a whole service in this process (web, worker, proxy) launches the default fixture
 *   in batches of BATCH, keeping every session open and idle. After each batch it reads each
 *   session container's memory (Docker's stats: usage less inactive file cache) and the host's
 *   MemAvailable. It stops when a batch's launch p95 is twice the first batch's, when the host
 *   has less than RESERVE_GIB available, or at MAX sessions.
 * - Builds: cold builds of test/fixtures/repos/notebook (numpy, pandas, matplotlib from a local
 *   index; a dependency file new to Docker each time), BUILDS of them, as many at once as the
 *   machine has cores: builds per core and hour.
 * Results go to BENCHMARKS.md between markers; deploy/README.md turns them into machines.
 *
 *   npm run bench:density          (MAX=200 BATCH=10 BUILDS=4 RESERVE_GIB=2 to change them)
 */
import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { createLog } from '../src/log/create-log.js';
import { parseSource } from '../src/repos/repo-spec.js';
import { startService } from '../src/service.js';
import { SessionStore } from '../src/sessions/session-store.js';
import { readEventStream } from '../test/helpers/event-stream.js';
import { freePort } from '../test/helpers/free-port.js';
import { startGitServer } from '../test/helpers/git-server.js';
import { removeTestSandbox, testSessionNetwork } from '../test/helpers/test-service.js';
import { startIndexBuilder } from './index-builder.js';
import { machine, median, percentile, writeSection } from './report.js';

const MAX = Number(process.env.MAX ?? 200);
const BATCH = Number(process.env.BATCH ?? 10);
const BUILDS = Number(process.env.BUILDS ?? 4);
const RESERVE = Number(process.env.RESERVE_GIB ?? 2) * 2 ** 30;
const ROOT = join(import.meta.dirname, '..');
const MiB = 2 ** 20;

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number) => `${Math.round(bytes / MiB)} MiB`;

async function memAvailable(): Promise<number> {
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)![1]) * 1024;
}

/** A container's memory as `docker stats` shows it: usage less the inactive file cache. */
async function containerMemory(docker: Docker, id: string): Promise<number> {
  const stats = await docker.getContainer(id).stats({ stream: false });
  const { usage = 0, stats: detail = {} } = stats.memory_stats as {
    usage?: number;
    stats?: Record<string, number>;
  };
  return usage - (detail.total_inactive_file ?? detail.inactive_file ?? 0);
}

interface Batch {
  sessions: number;
  p50: number;
  p95: number;
  perSession: number;
  available: number;
}

async function sessions(): Promise<{ batches: Batch[]; stopped: string; startAvailable: number }> {
  const namespace = `density${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const config = loadConfig({
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_IMAGE_PREFIX: `bindery-bench/${namespace}-`,
    BINDERY_SESSION_NETWORK: testSessionNetwork(namespace),
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_LAUNCH_RATE_LIMIT: '0',
    BINDERY_MAX_SESSIONS: String(MAX + BATCH),
    BINDERY_MAX_SESSIONS_PER_CLIENT: '0',
  });
  const docker = new Docker();
  const engine = new DockerEngine();
  const redis = new Redis(config.redisUrl);
  const git = await startGitServer();
  const service = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: createLog({ level: 'silent' }),
  });
  const store = new SessionStore(redis, namespace);
  const batches: Batch[] = [];
  let image = '';
  let stopped = `reached MAX=${MAX}`;
  try {
    const repo = await git.publish('density', join(ROOT, 'test/fixtures/repos/default'));
    const url = `${service.url}/build/git/${encodeURIComponent(repo.url)}/${repo.sha}`;
    const first = await readEventStream(url); // builds the image
    image = String(first.events.at(-1)?.image);
    for (const record of await store.all()) {
      await engine.removeContainer(record.containerId);
      await store.remove(record.name);
    }
    const startAvailable = await memAvailable();
    while (batches.length * BATCH < MAX) {
      const times: number[] = [];
      for (let i = 0; i < BATCH; i++) {
        const started = performance.now();
        const { events } = await readEventStream(url);
        const ready = events.at(-1)!;
        if (ready.phase !== 'ready') throw new Error(`launch failed: ${JSON.stringify(ready)}`);
        const lab = await fetch(`${String(ready.url)}lab?token=${String(ready.token)}`);
        if (!lab.ok) throw new Error(`JupyterLab answered ${lab.status}`);
        await lab.arrayBuffer();
        times.push(performance.now() - started);
      }
      // Idle: JupyterLab's server settles after its first page.
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const records = await store.all();
      const memory = await Promise.all(
        records.map((record) => containerMemory(docker, record.containerId)),
      );
      const batch: Batch = {
        sessions: records.length,
        p50: median(times),
        p95: percentile(times, 95),
        perSession: median(memory),
        available: await memAvailable(),
      };
      batches.push(batch);
      console.log(
        `${batch.sessions} sessions: launch p50 ${seconds(batch.p50)} p95 ${seconds(batch.p95)}, ${mib(batch.perSession)} each, ${mib(batch.available)} available`,
      );
      if (batch.p95 >= 2 * batches[0]!.p95) {
        stopped = `launch p95 doubled at ${batch.sessions} sessions`;
        break;
      }
      if (batch.available < RESERVE + BATCH * batch.perSession * 2) {
        stopped = `host memory: ${mib(batch.available)} available at ${batch.sessions} sessions`;
        break;
      }
    }
    return { batches, stopped, startAvailable };
  } finally {
    await service.close();
    for (const record of await store.all()) await engine.removeContainer(record.containerId);
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    if (image) await engine.removeImage(image);
    await redis.quit();
    await git.close();
    await removeTestSandbox(config);
  }
}

async function builds(): Promise<{ wallMs: number; each: number[]; parallel: number }> {
  const { builder, built, close } = await startIndexBuilder();
  const parallel = cpus().length;
  const each: number[] = [];
  const dirs: string[] = [];
  const started = performance.now();
  try {
    let next = 0;
    const lane = async () => {
      while (next < BUILDS) {
        next++;
        const dir = await mkdtemp(join(tmpdir(), 'bindery-density-'));
        dirs.push(dir);
        await cp(join(ROOT, 'test/fixtures/repos/notebook'), dir, { recursive: true });
        // A dependency file Docker has not seen: the repository's layers are all built.
        await appendFile(join(dir, 'requirements.txt'), `# ${randomBytes(8).toString('hex')}\n`);
        const result = await builder.build(parseSource(dir));
        each.push(result.durationMs);
        built(result.imageName);
      }
    };
    await Promise.all(Array.from({ length: parallel }, lane));
    return { wallMs: performance.now() - started, each, parallel };
  } finally {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await close();
  }
}

async function main(): Promise<void> {
  const { batches, stopped, startAvailable } = await sessions();
  const built = await builds();
  const last = batches.at(-1)!;
  const first = batches[0]!;
  // What the host lost per session, kernel and Docker's share included.
  const hostPerSession = (startAvailable - last.available) / last.sessions;
  // MemAvailable moves with the page cache too; never count a session below its own container.
  const fits = Math.floor((startAvailable - RESERVE) / Math.max(hostPerSession, last.perSession));
  const perCoreHour = BUILDS / (built.wallMs / 3_600_000) / built.parallel;
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${await machine()}.`,
    `\`npm run bench:density\`: the default fixture launched in batches of ${BATCH}, every session kept open and idle; stopped: ${stopped}.`,
    '',
    '| sessions open | launch p50 | launch p95 | idle session memory (median) | host memory available |',
    '|---|---|---|---|---|',
    ...batches.map(
      (batch) =>
        `| ${batch.sessions} | ${seconds(batch.p50)} | ${seconds(batch.p95)} | ${mib(batch.perSession)} | ${mib(batch.available)} |`,
    ),
    '',
    '| figure | value |',
    '|---|---|',
    `| idle session, container memory (median at ${last.sessions}) | ${mib(last.perSession)} |`,
    `| idle session, host memory used (MemAvailable drop per session) | ${mib(hostPerSession)} |`,
    `| launch p95, first batch → last batch | ${seconds(first.p95)} → ${seconds(last.p95)} (${(last.p95 / first.p95).toFixed(2)} ×) |`,
    `| idle sessions this machine holds, keeping ${RESERVE / 2 ** 30} GiB free | ${fits} |`,
    `| cold builds (notebook fixture), ${built.parallel} at once | ${BUILDS} in ${seconds(built.wallMs)}; each ${seconds(median(built.each))} (median) |`,
    `| builds per core and hour | ${perCoreHour.toFixed(0)} |`,
  ].join('\n');
  console.log(
    await writeSection(
      'density',
      'Density',
      '`bench/density.ts` measures what one machine holds: idle sessions launched through the whole service and kept open until launches slow to twice their first p95 or memory runs short, then cold builds as many at once as there are cores. deploy/README.md ("Sizing") turns these figures into machines.',
      body,
    ),
  );
}

await main();
