/**
 * The GitHub worker tries a job again only when another try can help: GitHub's 4xx refusals
 * (422 validation, 404 of a deleted repository, 401/403 other than rate limits) would be the
 * same each time, so the job ends at once with one clear log line; a 5xx is tried again with the
 * queue's backoff (1 s here instead of 10 s). GitHub is the fake of fake-github.ts, served
 * through nock.
 */
import { afterAll, beforeAll, beforeEach, expect, it, jest } from '@jest/globals';
import nock from 'nock';
import { FakeGitHub } from '../helpers/fake-github.js';
import { startGitHubHarness, type GitHubHarness } from '../helpers/github-harness.js';
import { webhookExample } from '../helpers/webhook-examples.js';
import { waitFor } from '../helpers/wait-for.js';

const APP_ID = 4343;
const OWNER = 'Codertocat';
const REPO = 'Hello-World';
const PUSHED = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const CREATE_CHECK_RUN = `POST /repos/${OWNER}/${REPO}/check-runs`;

// Octokit's retry plugin tries a 5xx three more times itself, 1 + 4 + 9 s apart, before the
// job fails; the throttling plugin spaces an installation's writes a second apart.
jest.setTimeout(90_000);

let harness: GitHubHarness;
let github: FakeGitHub;

const pushToMaster = () =>
  webhookExample('push', (p) => p.ref === 'refs/heads/master' && p.installation);
const createCalls = () => github.apiCalls.filter((call) => call === CREATE_CHECK_RUN).length;
/** The GitHub worker's lines about the failed tries of the prebuild of `delivery`. */
const failedLines = (delivery: string) =>
  harness.logEntries
    .filter((entry) => entry.job === delivery && /^prebuild failed/.test(entry.msg))
    .map((entry) => entry.msg);

beforeAll(async () => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  for (const method of ['GET', 'POST', 'PATCH'] as const) {
    nock('https://api.github.com')
      .persist()
      .intercept(/.*/, method)
      .reply(function (uri, body) {
        const reply = github.handle(
          method,
          uri,
          typeof body === 'string' ? body : JSON.stringify(body || undefined),
        );
        return [reply.status, reply.body as string, reply.headers];
      });
  }
  harness = await startGitHubHarness({
    appId: APP_ID,
    githubUrl: 'https://github.com',
    retryDelayMs: 1_000,
  });
});

afterAll(async () => {
  await harness?.close();
  nock.cleanAll();
  nock.enableNetConnect();
  nock.restore();
});

beforeEach(async () => {
  github = new FakeGitHub(APP_ID);
  github.addRepository({
    owner: OWNER,
    name: REPO,
    defaultBranch: 'master',
    branches: { master: PUSHED },
  });
  github.addRepository({ owner: OWNER, name: '.github' });
  harness.built.length = 0;
});

it('a 422 from GitHub is tried once, and said in one line', async () => {
  github.failNext(CREATE_CHECK_RUN, 422, 10);
  const delivery = await harness.deliver('push', pushToMaster());
  expect(delivery.status).toBe(200);
  // Idle once nothing waits for a retry either: with retries, the next try comes after 1 s.
  await harness.idle(20_000);
  expect(createCalls()).toBe(1);
  expect(harness.built).toEqual([]);
  expect(failedLines(delivery.delivery)).toEqual([
    `prebuild failed (try 1): GitHub answered 422 to ${CREATE_CHECK_RUN} (Validation Failed - https://docs.github.com/rest); not tried again, as it would answer the same.`,
  ]);
});

it('a 404 for a deleted repository is tried once', async () => {
  github.failNext(`GET /repos/${OWNER}/${REPO}/commits/${PUSHED}/check-runs`, 404, 10);
  const { delivery } = await harness.deliver('push', pushToMaster());
  await harness.idle(20_000);
  expect(github.apiCalls.filter((call) => call.endsWith('/check-runs')).length).toBe(1);
  expect(failedLines(delivery)).toEqual([expect.stringContaining('GitHub answered 404 to GET')]);
});

it('a 502 from GitHub is tried again, and the check run is made', async () => {
  // The first try and the retry plugin's three more: the job's first try fails.
  github.failNext(CREATE_CHECK_RUN, 502, 4);
  const { delivery } = await harness.deliver('push', pushToMaster());
  await waitFor(
    () => github.checkRuns.some((run) => run.status === 'completed'),
    'the check run to complete after a retry',
    80_000,
  );
  await harness.idle();
  expect(createCalls()).toBe(5);
  expect(harness.built.map((job) => job.ref)).toEqual([PUSHED]);
  expect(failedLines(delivery)).toEqual([
    expect.stringMatching(/^prebuild failed \(try 1\): Server Error/),
  ]);
});
