import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { sign } from '@octokit/webhooks-methods';
import { Queue } from 'bullmq';
import { GITHUB_QUEUE } from '../../src/github/github-jobs.js';
import { MAX_PAYLOAD_BYTES } from '../../src/github/webhook-middleware.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { WEBHOOK_SECRET, testPrivateKey } from '../helpers/github-harness.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { webhookExample } from '../helpers/webhook-examples.js';

/**
 * Limits the service enforces at its edge, through the real service (web and worker roles,
 * real Redis, Docker and HTTP): API tokens and the launch rate limit, and the GitHub webhook
 * endpoint's signature check and payload cap.
 */
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(3).toString('hex');
const TOKEN = `token-${run}`;
const engine = new DockerEngine();
let git: GitServer;
let repo: { url: string; sha: string };

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.publish('demo', FIXTURE);
});

afterAll(async () => {
  await git?.close();
});

describe('an API token and the launch rate limit', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService('sl', {
      BINDERY_LAUNCH_RATE_LIMIT: '1',
      BINDERY_API_TOKENS: `other-token,${TOKEN}`,
    });
  }, 120_000);

  afterAll(async () => {
    await service?.remove();
  }, 120_000);

  test('past the limit a visitor gets 429, a launch with a token is not counted or stopped', async () => {
    const url = `${service.url}/build/git/${encodeURIComponent(repo.url)}/HEAD`;
    const withToken = { headers: { authorization: `Bearer ${TOKEN}` } };
    const first = await readEventStream(url);
    expect(first.events.at(-1)).toMatchObject({ phase: 'ready' });
    const second = await readEventStream(url);
    expect(second.events).toEqual([
      {
        phase: 'failed',
        status_code: 429,
        message: expect.stringMatching(/^Too many launches from .* \(more than 1 a minute\)/),
      },
    ]);
    // The same client, with a token: two launches in the same minute, both running.
    for (let i = 0; i < 2; i++) {
      const { events } = await readEventStream(url, withToken);
      const ready = events.at(-1)!;
      expect(ready).toMatchObject({ phase: 'ready' });
      const status = await fetch(`${String(ready.url)}api/status?token=${String(ready.token)}`);
      expect(status.status).toBe(200);
    }
    // A wrong token is no way around it.
    const wrong = await readEventStream(url, { headers: { authorization: 'Bearer not-a-token' } });
    expect(wrong.events.at(-1)).toMatchObject({ phase: 'failed' });
    expect([403, 429]).toContain(wrong.events.at(-1)!.status_code);
    const sessions = (await engine.listSessions()).filter(
      (container) => container.labels['bindery.store'] === service.namespace,
    );
    expect(sessions).toHaveLength(3);
  }, 300_000);
});

describe('the GitHub webhook endpoint of the service', () => {
  let service: TestService;
  let queue: Queue;
  let webhooks: string;

  beforeAll(async () => {
    // GitHub is a closed port on loopback: nothing this test makes the app do leaves the machine.
    const github = `127.0.0.1:${await freePort()}`;
    service = await startTestService('sw', {
      APP_ID: '1',
      PRIVATE_KEY: testPrivateKey(),
      WEBHOOK_SECRET,
      GHE_HOST: github,
      GHE_PROTOCOL: 'http',
    });
    webhooks = `${service.url}/api/github/webhooks`;
    queue = new Queue(`${GITHUB_QUEUE}-${service.namespace}`, {
      connection: { host: '127.0.0.1', port: 6379 },
    });
  }, 120_000);

  afterAll(async () => {
    await queue?.close();
    await service?.remove();
  }, 120_000);

  const jobs = async () => {
    const counts = await queue.getJobCounts();
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  };
  const push = () =>
    JSON.stringify(
      webhookExample('push', (p) => p.ref === 'refs/heads/master' && Boolean(p.installation)),
    );
  const deliver = (body: string, headers: Record<string, string>) =>
    fetch(webhooks, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        ...headers,
      },
      body,
    });

  test('a push without a signature is refused and enqueues nothing; the same push signed is enqueued', async () => {
    const body = push();
    const notSigned = {
      error:
        'The delivery is not signed: set a webhook secret in the app settings and the same value in WEBHOOK_SECRET.',
    };
    const unsigned = await deliver(body, {});
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toEqual(notSigned);
    const empty = await deliver(body, { 'x-hub-signature-256': '' });
    expect(empty.status).toBe(401);
    expect(await empty.json()).toEqual(notSigned);
    expect(await jobs()).toBe(0);

    const signed = await deliver(body, { 'x-hub-signature-256': await sign(WEBHOOK_SECRET, body) });
    expect(signed.status).toBe(200);
    await waitFor(async () => (await jobs()) >= 1, 'the signed push in the queue', 10_000);
  }, 60_000);

  test('a body declared past the 25 MiB cap is refused with 413 before it is read', async () => {
    const outcome = await new Promise<{ status?: number; body: string }>((resolve) => {
      const request = httpRequest(webhooks, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': String(MAX_PAYLOAD_BYTES + 1),
          'x-github-event': 'push',
          'x-github-delivery': randomUUID(),
        },
      });
      request.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (text: string) => (body += text));
        response.on('end', () => resolve({ status: response.statusCode, body }));
      });
      request.on('error', () => resolve({ body: '' }));
      request.flushHeaders();
    });
    expect(outcome.status).toBe(413);
    expect(outcome.body).toMatch(/larger than GitHub's 25 MiB limit/);
  }, 60_000);
});
