/**
 * A repository that floods its build log without newlines, built through the service as a
 * visitor's badge would build it: the build must fail with the log-limit sentence, the
 * process must not hoard the output, and the service must keep answering.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEventStream } from '../helpers/event-stream.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

let git: GitServer;
let service: TestService;
let repoDir: string;

beforeAll(async () => {
  repoDir = await mkdtemp(join(tmpdir(), 'bindery-flood-'));
  // Endless output with no newline at all: one "line" that never ends.
  await writeFile(join(repoDir, 'postBuild'), "#!/bin/sh\nyes | tr -d '\\n'\n", { mode: 0o755 });
  git = await startGitServer();
  service = await startTestService('f', {
    BINDERY_BUILD_LOG_MAX: '2m',
    // Only so that an unbounded build ends this test at all.
    BINDERY_BUILD_TIMEOUT: '90',
  });
}, 60_000);

afterAll(async () => {
  await service?.remove();
  await git?.close();
  await rm(repoDir, { recursive: true, force: true });
}, 60_000);

test('a postBuild printing without newlines fails at the log limit while /health answers', async () => {
  const repo = await git.publish('flood', repoDir);
  const rssBefore = process.memoryUsage().rss;
  let slowestHealth = 0;
  let peakRss = rssBefore;
  let building = true;
  const watch = (async () => {
    while (building) {
      const started = performance.now();
      const health = await fetch(`${service.url}/health`, { signal: AbortSignal.timeout(5_000) });
      await health.arrayBuffer();
      slowestHealth = Math.max(slowestHealth, performance.now() - started);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const started = Date.now();
  const { events } = await readEventStream(
    `${service.url}/build/git/${encodeURIComponent(repo.url)}/HEAD`,
  ).finally(() => (building = false));
  await watch;

  const last = events.at(-1)!;
  expect(last).toMatchObject({
    phase: 'failed',
    message: expect.stringContaining("printed more than 2 MiB of log, this service's limit"),
  });
  // Stopped by the log limit, long before the time limit.
  expect(Date.now() - started).toBeLessThan(60_000);
  expect(slowestHealth).toBeLessThan(1_000);
  expect(peakRss - rssBefore).toBeLessThan(100 * 2 ** 20);
  // Every line a client was sent is bounded, the endless one included.
  const longest = Math.max(...events.map((event) => String(event.message ?? '').length));
  expect(longest).toBeLessThanOrEqual(8 * 1024 + 1);
}, 120_000);
