// Two real `bindery worker --role build` processes share one queue; the one that took a build
// is killed with SIGKILL mid-build, the other finishes it, and the client waiting on the
// build's event stream gets `ready`. (test/integration/build-queue.test.ts proves the same of
// createBuildWorker with stand-in builds; this is the command, with Docker.)
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService } from '../../src/service.js';
import { compileBindery, startBindery } from '../helpers/bindery-command.js';
import { quietLog } from '../helpers/capture-log.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer } from '../helpers/git-server.js';
import { waitFor } from '../helpers/wait-for.js';

const run = randomBytes(3).toString('hex');
const prefix = `bindery-test/wh${run}-`;
/** A Redis database no other test file uses: `bindery worker` takes the default queue names. */
const REDIS_URL = 'redis://127.0.0.1:6379/12';
const TOKEN = `token-${run}`;
const env = {
  REDIS_URL,
  BINDERY_IMAGE_PREFIX: prefix,
  BINDERY_SESSION_NETWORK: `bindery-test-w${run}`,
  BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
  // A killed worker's build goes to the other within seconds, not BullMQ's default 30 to 60.
  BINDERY_WORKER_STALL_TIMEOUT: '2',
};
const engine = new DockerEngine();
let scratch = '';
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bindery-handover-'));
  await compileBindery();
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  await rm(scratch, { recursive: true, force: true });
  const config = loadConfig(env);
  await (await prepareSandbox({ engine, config, log: quietLog })).remove().catch(() => {});
  const redis = new Redis(REDIS_URL);
  const keys = [...(await redis.keys('bull:bindery-*')), ...(await redis.keys(`build:${prefix}*`))];
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}, 120_000);

test('a worker killed with SIGKILL mid-build hands the build to another; the waiting client gets ready', async () => {
  const git = await startGitServer();
  // One slow step, so that the build is surely under way when its worker dies.
  const dir = join(scratch, 'slow');
  await mkdir(dir);
  await writeFile(
    join(dir, 'Dockerfile'),
    `ARG BINDERY_BASE_IMAGE=bindery/base:bookworm\nFROM \${BINDERY_BASE_IMAGE}\nRUN echo step-${run} && sleep 8\n`,
  );
  const repo = await git.publish('slow', dir);

  // Started one after the other: each prepares the same sandbox network on start.
  const workers = [startBindery(env, 'worker', '--role', 'build')];
  cleanups.push(() => workers.forEach((worker) => worker.child.kill('SIGKILL')));
  await waitFor(() => /roles: build\n/.test(workers[0]!.output.err), 'worker one', 60_000);
  workers.push(startBindery(env, 'worker', '--role', 'build'));
  await waitFor(() => /roles: build\n/.test(workers[1]!.output.err), 'worker two', 60_000);
  const port = await freePort();
  const web = await startService({
    config: loadConfig({
      ...env,
      PORT: String(port),
      BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      BINDERY_API_TOKENS: TOKEN,
    }),
    host: '127.0.0.1',
    // No worker here: only the commands' workers build.
    roles: ['web'],
    log: quietLog,
  });
  let image = '';
  try {
    const byPid = new Map(workers.map((worker) => [worker.child.pid, worker]));
    let killed: number | undefined;
    const seen: string[] = [];
    const { events } = await readEventStream(
      `${web.url}/build/git/${encodeURIComponent(repo.url)}/HEAD?build_only=true`,
      {
        headers: { authorization: `Bearer ${TOKEN}` },
        onEvent: (event: StreamEvent) => {
          seen.push(String(event.message ?? ''));
          // The first worker's step is running: kill that worker, as a lost machine would go.
          if (killed === undefined && String(event.message).includes(`step-${run}`)) {
            const builder = /Building on .* \(worker (\d+)\)/.exec(seen.join(''));
            killed = Number(builder?.[1]);
            byPid.get(killed)!.child.kill('SIGKILL');
          }
        },
      },
    );
    const messages = events.map((event) => String(event.message ?? ''));
    const survivor = workers.find((worker) => worker.child.pid !== killed)!;

    expect(byPid.has(killed)).toBe(true);
    expect(await byPid.get(killed)!.exited).toBeNull();
    // The log names each worker that took the build, on which host.
    expect(messages.filter((message) => message.startsWith('Building on '))).toEqual([
      `Building on ${hostname()} (worker ${killed})\n`,
      `Building on ${hostname()} (worker ${survivor.child.pid})\n`,
    ]);
    expect(messages).toContain('The worker building this image stopped; the build starts again.\n');
    expect(events.at(-1)).toMatchObject({
      phase: 'ready',
      imageName: expect.stringMatching(new RegExp(`^${prefix}.*:${repo.sha}$`)),
    });
    image = String(events.at(-1)!.imageName);
    expect(await engine.imageExists(image)).toBe(true);
    expect(survivor.child.exitCode).toBeNull();
  } finally {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await web.close();
    await git.close();
    if (image) await engine.removeImage(image).catch(() => {});
  }
}, 300_000);
