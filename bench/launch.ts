/**
 * Launch benchmark. A whole service in this process (web, worker, proxy), an image already
 * built, then LAUNCHES launches one after another: from the request to /build/git/… until
 * JupyterLab's page answers through the proxy. p50 and p95, with a bare `docker run` of the same
 * image to JupyterLab answering for comparison. Sessions are removed as it goes.
 *
 *   npm run bench:launch            (LAUNCHES=20 to change the count, at most 100)
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { startService } from '../src/service.js';
import { SessionStore } from '../src/sessions/session-store.js';
import { startSession, waitForJupyter } from '../src/sessions/start-session.js';
import { readEventStream } from '../test/helpers/event-stream.js';
import { startGitServer } from '../test/helpers/git-server.js';
import { machine, median, percentile, writeSection } from './report.js';
import { freePort } from '../test/helpers/free-port.js';
import { createLog } from '../src/log/create-log.js';

const LAUNCHES = Math.min(Math.max(Number(process.env.LAUNCHES ?? 12) || 12, 10), 100);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** JupyterLab's page, what a reader's browser opens first. */
async function expectJupyterLab(url: string, token: string): Promise<void> {
  const response = await fetch(`${url}lab?token=${token}`);
  const page = await response.text();
  if (!response.ok || !page.includes('<title>JupyterLab</title>')) {
    throw new Error(`${url}lab answered ${response.status} without JupyterLab`);
  }
}

async function main(): Promise<void> {
  const namespace = `bench-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const config = loadConfig({
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_IMAGE_PREFIX: `bindery-bench/l${randomBytes(4).toString('hex')}-`,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_LAUNCH_RATE_LIMIT: '0',
  });
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
  const launch: number[] = [];
  const bare: number[] = [];
  let image = '';
  try {
    const repo = await git.publish(
      'bench',
      join(import.meta.dirname, '../test/fixtures/repos/default'),
    );
    const url = `${service.url}/build/git/${encodeURIComponent(repo.url)}/${repo.sha}`;
    const first = await readEventStream(url); // builds the image
    image = String(first.events.at(-1)?.image);
    for (let i = 0; i < LAUNCHES; i++) {
      const started = performance.now();
      const { events } = await readEventStream(url);
      const ready = events.at(-1)!;
      if (ready.phase !== 'ready') throw new Error(`launch ${i} failed: ${JSON.stringify(ready)}`);
      await expectJupyterLab(String(ready.url), String(ready.token));
      launch.push(performance.now() - started);

      // The same image started bare, as a yardstick: docker run to Jupyter answering.
      const bareStarted = performance.now();
      const session = await startSession({
        engine,
        config,
        imageName: image,
        repoLabel: 'bench',
        publishOn: '127.0.0.1',
      });
      await waitForJupyter(session.url, session.token);
      await expectJupyterLab(session.url, session.token);
      bare.push(performance.now() - bareStarted);
      await engine.removeContainer(session.container.id);
      for (const record of await store.all()) {
        await engine.removeContainer(record.containerId);
        await store.remove(record.name);
      }
    }
  } finally {
    await service.close();
    for (const record of await store.all()) await engine.removeContainer(record.containerId);
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    if (image) await engine.removeImage(image);
    await redis.quit();
    await git.close();
  }
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${await machine()}.`,
    `\`npm run bench:launch\`, ${LAUNCHES} launches of a built image, one at a time.`,
    '',
    '| from request to JupyterLab answering | p50 | p95 | target |',
    '|---|---|---|---|',
    `| launch through \`/build\` and the proxy | ${seconds(median(launch))} | ${seconds(percentile(launch, 95))} | under 1.3 × the bare run |`,
    `| bare \`docker run\` of the same image (yardstick) | ${seconds(median(bare))} | ${seconds(percentile(bare, 95))} | — |`,
    `| ratio | ${(median(launch) / median(bare)).toFixed(2)} × | ${(percentile(launch, 95) / percentile(bare, 95)).toFixed(2)} × | under 1.3 × |`,
  ].join('\n');
  console.log(
    await writeSection(
      'launch',
      'Launches',
      '`bench/launch.ts` runs the whole service in one process against a local git server, builds the default fixture once, then launches it again and again: the clock runs from the `/build` request to the JupyterLab page answering through the proxy, and includes resolving the ref with `git ls-remote`, the image check, the container start, Jupyter starting and the route.',
      body,
    ),
  );
}

await main();
