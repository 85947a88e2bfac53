import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { sign } from '@octokit/webhooks-methods';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { formatDuration } from '../../src/format-duration.js';
import { BuildLog } from '../../src/queue/build-log.js';
import { startService, type RunningService } from '../../src/service.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { readEventStream } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGheServer } from '../helpers/ghe-server.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { webhookExample } from '../helpers/webhook-examples.js';
import { testPrivateKey, WEBHOOK_SECRET } from '../helpers/github-harness.js';
import { removeTestSandbox, testSessionNetwork } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { captureLog } from '../helpers/capture-log.js';

jest.setTimeout(180_000);

const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const APP_ID = 4242;
const INSTALLATION = 77;
const run = randomBytes(4).toString('hex');
const namespace = `ghe${run}`;
const prefix = `bindery-test/g${run}-`;
/** The sandbox network of this file's services: its bridge and firewall chain are this file's. */
const network = testSessionNetwork(namespace);
const engine = new DockerEngine();
const redis = new Redis();

let publicGit: GitServer;
let privateGit: GitServer;
let ghe: Awaited<ReturnType<typeof startGheServer>>;
let service: RunningService;
const github = new FakeGitHub(APP_ID);
const shas: Record<string, string> = {};
const logs = captureLog('info');
const messages = () => logs.entries().map(({ msg }) => msg);

/** GitHub's push example, moved to `owner/demo`'s default branch at its commit. */
function pushTo(owner: string, isPrivate: boolean) {
  const push = webhookExample('push', (p) => p.ref === 'refs/heads/master' && p.installation);
  Object.assign(push.repository, {
    name: 'demo',
    full_name: `${owner}/demo`,
    private: isPrivate,
    default_branch: 'main',
  });
  push.repository.owner.login = owner;
  push.installation.id = INSTALLATION;
  push.ref = 'refs/heads/main';
  push.after = shas[owner];
  return push;
}

async function deliver(event: string, payload: unknown) {
  const body = JSON.stringify(payload);
  const response = await fetch(`${service.url}/api/github/webhooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': await sign(WEBHOOK_SECRET, body),
    },
    body,
  });
  return response.status;
}

beforeAll(async () => {
  publicGit = await startGitServer();
  // The private repository answers only to the installation's token (FakeGitHub hands it out).
  privateGit = await startGitServer({ requireToken: `ghs_fake_installation_${INSTALLATION}` });
  shas.octo = (await publicGit.publish('octo/demo', FIXTURE)).sha;
  await privateGit.publish('secret/demo', FIXTURE);
  // A commit of its own: the same files at the same second would be the same commit.
  shas.secret = await privateGit.commit('secret/demo', { 'SECRET.md': 'not for everyone\n' });
  for (const [owner, isPrivate] of [
    ['octo', false],
    ['secret', true],
  ] as const) {
    github.addRepository({
      owner,
      name: 'demo',
      private: isPrivate,
      defaultBranch: 'main',
      branches: { main: shas[owner]! },
    });
  }
  ghe = await startGheServer(github, { octo: publicGit.url, secret: privateGit.url });
  const port = await freePort();
  service = await startService({
    config: loadConfig({
      PORT: String(port),
      BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      BINDERY_IMAGE_PREFIX: prefix,
      BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
      GHE_HOST: ghe.host,
      GHE_PROTOCOL: 'http',
      APP_ID: String(APP_ID),
      PRIVATE_KEY: testPrivateKey(),
      WEBHOOK_SECRET,
      BINDERY_API_TOKENS: 'test-token',
      BINDERY_SESSION_NETWORK: network,
    }),
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build', 'github'],
    log: logs.log,
  });
});

afterAll(async () => {
  await service?.close();
  await ghe?.close();
  await publicGit?.close();
  await privateGit?.close();
  for (const check of github.checkRuns)
    await engine.removeImage(check.external_id as string).catch(() => {});
  const keys = [
    ...(await redis.keys(`${namespace}:*`)),
    ...(await redis.keys(`${namespace}-off:*`)),
    ...(await redis.keys(`bull:*${namespace}*`)),
    ...(await redis.keys(`build:${prefix}*`)),
  ];
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await removeTestSandbox(loadConfig({ BINDERY_SESSION_NETWORK: network }));
});

const checkFor = (sha: string) => github.checkRuns.find((check) => check.head_sha === sha);

describe('the GitHub App against a GitHub Enterprise host', () => {
  it('says once at start that the app is on', () => {
    expect(messages().filter((line) => line.startsWith('GitHub App'))).toEqual([
      `GitHub App ${APP_ID} on: webhooks at /api/github/webhooks`,
    ]);
  });

  it('builds a pushed commit for real and ends its check run in success with the log tail', async () => {
    expect(await deliver('push', pushTo('octo', false))).toBe(200);
    await waitFor(
      () => checkFor(shas.octo!)?.status === 'completed',
      'the check run to complete',
      150_000,
    );
    const check = checkFor(shas.octo!)!;
    expect(check.conclusion).toBe('success');
    const image = check.external_id as string;
    expect(await engine.imageExists(image)).toBe(true);
    // The time comes with the build's final event, written before the queue records the job's
    // end: the title never reads just "Built".
    const final = await new BuildLog(redis).last(image);
    expect(final).toMatchObject({ phase: 'built', durationMs: expect.any(Number) });
    const took = formatDuration(final!.durationMs!);
    expect(check.output).toMatchObject({
      title: `Built in ${took}`,
      summary: expect.stringContaining(`Built the image \`${image}\` in ${took}.`),
      text: expect.stringContaining('Step '),
    });
    expect(github.rejected).toEqual([]);
    expect(github.contentsReads.filter((read) => read.ref !== undefined)).toEqual([]);
    expect(check.details_url).toBe(`${service.url}/logs/${image}`);
    const page = await fetch(check.details_url as string);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Step ');

    // The PR comment's badge launches this commit, and finds it prebuilt.
    const { events } = await readEventStream(
      `${service.url}/build/gh/octo/demo/${shas.octo}?build_only=true`,
      { headers: { authorization: 'Bearer test-token' } },
    );
    expect(events.map((event) => event.phase)).toEqual(['built', 'ready']);
    expect(events[0]).toMatchObject({
      imageName: image,
      message: 'Found built image, launching...\n',
    });
  });

  it("fetches a private repository with the installation's token, and keeps its log off the public page", async () => {
    expect(await deliver('push', pushTo('secret', true))).toBe(200);
    await waitFor(
      () => checkFor(shas.secret!)?.status === 'completed',
      'the check run to complete',
      150_000,
    );
    const check = checkFor(shas.secret!)!;
    expect(check.conclusion).toBe('success');
    expect(github.rejected).toEqual([]);
    expect(check.details_url).toBeUndefined();
    const image = check.external_id as string;
    expect(await engine.imageExists(image)).toBe(true);
    expect((await fetch(`${service.url}/logs/${image}`)).status).toBe(404);
  });
});

describe('without the GitHub App', () => {
  it('runs with the app off, says so once, and has no webhook endpoint', async () => {
    const lines = captureLog('info');
    const port = await freePort();
    const plain = await startService({
      config: loadConfig({
        PORT: String(port),
        BINDERY_IMAGE_PREFIX: prefix,
        BINDERY_SESSION_NETWORK: network,
      }),
      namespace: `${namespace}-off`,
      host: '127.0.0.1',
      roles: ['web'],
      log: lines.log,
    });
    try {
      expect(
        lines
          .entries()
          .map(({ msg }) => msg)
          .filter((line) => line.startsWith('GitHub App')),
      ).toEqual([
        'GitHub App off: set APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET to turn it on',
      ]);
      const response = await fetch(`${plain.url}/api/github/webhooks`, {
        method: 'POST',
        body: '{}',
      });
      expect(response.status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});
