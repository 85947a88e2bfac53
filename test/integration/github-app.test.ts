import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  jest,
} from '@jest/globals';
import nock from 'nock';
import { formatDuration } from '../../src/format-duration.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { startGitHubHarness, type GitHubHarness } from '../helpers/github-harness.js';
import { webhookExample } from '../helpers/webhook-examples.js';
import { waitFor } from '../helpers/wait-for.js';

const APP_ID = 4242;
const OWNER = 'Codertocat';
const REPO = 'Hello-World';
const HEAD = 'ec26c3e57ca3a959ca5aad62de7213c562f8c821';
const NEXT_HEAD = '1111111111111111111111111111111111111111';
const PUSHED = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';

const example = webhookExample;

const pushToMaster = () => example('push', (p) => p.ref === 'refs/heads/master' && p.installation);
const pullRequest = (action: string) =>
  example('pull_request', (p) => p.action === action && p.installation);

// The throttling plugin spaces an installation's writes a second apart, as GitHub asks.
jest.setTimeout(60_000);

let harness: GitHubHarness;
let github: FakeGitHub;

beforeAll(async () => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  // GitHub's API, served by a fake with state; every call is recorded on it.
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
  harness = await startGitHubHarness({ appId: APP_ID, githubUrl: 'https://github.com' });
});

afterAll(async () => {
  await harness?.close();
  nock.cleanAll();
  nock.enableNetConnect();
  // jest runs later test files in this process: give them Node's own HTTP back.
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
  harness.failing.clear();
  await harness.forgetWaitingPullRequests();
});

// Each test's jobs end before the next test starts, so no test sees another's calls; and
// GitHub would have taken every call the app made (the fake answers 422 where GitHub would).
afterEach(async () => {
  const idle = await harness.idle().then(
    () => undefined,
    (error: unknown) => error,
  );
  // First: a refused call is why a test waited in vain, and says more than the wait's timeout.
  expect(github.rejected).toEqual([]);
  if (idle) throw idle;
});

const completed = () => github.checkRuns.filter((run) => run.status === 'completed');

describe('push to the default branch', () => {
  it('prebuilds the pushed commit and reports a check run from queued to success', async () => {
    const delivery = await harness.deliver('push', pushToMaster());
    expect(delivery.status).toBe(200);
    await waitFor(() => completed().length === 1, 'the check run to complete');

    expect(harness.built.map((job) => job.ref)).toEqual([PUSHED]);
    const image = harness.built[0]!.imageName;
    const repoPath = `/repos/${OWNER}/${REPO}`;
    expect(github.apiCalls).toEqual([
      `GET ${repoPath}/contents/.github/bindery.yml`,
      `GET /repos/${OWNER}/.github/contents/.github/bindery.yml`,
      `GET ${repoPath}/commits/${PUSHED}/check-runs`,
      `POST ${repoPath}/check-runs`,
      `PATCH ${repoPath}/check-runs/${github.checkRuns[0]!.id}`,
      `PATCH ${repoPath}/check-runs/${github.checkRuns[0]!.id}`,
    ]);
    const [create, inProgress, done] = github.calls.filter(
      (call) => call.path.includes('check-runs') && call.method !== 'GET',
    );
    expect(create!.body).toEqual({
      name: 'Bindery',
      head_sha: PUSHED,
      external_id: image,
      status: 'queued',
      details_url: `https://bindery.test/logs/${image}`,
      output: { title: 'Waiting for a build worker', summary: `Queued the build of \`${image}\`.` },
    });
    expect(inProgress!.body).toMatchObject({
      status: 'in_progress',
      started_at: expect.any(String),
    });
    const took = formatDuration((await harness.finalEvent(image))!.durationMs!);
    expect(done!.body).toMatchObject({
      status: 'completed',
      conclusion: 'success',
      completed_at: expect.any(String),
      output: {
        title: `Built in ${took}`,
        summary: `Built the image \`${image}\` in ${took}.\n\n[Launch it](https://bindery.test/v2/gh/${OWNER}/${REPO}/${PUSHED}) · [the whole log](https://bindery.test/logs/${image})`,
        text: expect.stringContaining('Step 1/1 : FROM bindery/base:bookworm'),
      },
    });
  });

  it("says how long the build took, though the queue records the job's end after the report", async () => {
    // The build worker writes a build's final event, and only then does BullMQ record the job's
    // end. Holding the job open until the check run is completed makes that order certain:
    // the duration must come with the final event, not from the job.
    harness.hooks.afterFinalEvent = () =>
      waitFor(() => completed().length === 1, 'the report, before the job ends');
    try {
      await harness.deliver('push', pushToMaster());
      await waitFor(() => completed().length === 1, 'the check run to complete');
    } finally {
      harness.hooks.afterFinalEvent = undefined;
    }
    const image = harness.built[0]!.imageName;
    const { durationMs } = (await harness.finalEvent(image))!;
    // The stand-in build takes 50 ms, and the whole build ended before the report did.
    expect(durationMs).toBeGreaterThanOrEqual(50);
    const took = formatDuration(durationMs!);
    expect(github.checkRuns[0]!.output).toMatchObject({
      title: `Built in ${took}`,
      summary: expect.stringContaining(`Built the image \`${image}\` in ${took}.`),
    });
    expect(harness.logs).toContain(
      `report: ${OWNER}/${REPO}@${PUSHED.slice(0, 7)}: built in ${took}, reported`,
    );
  });

  it('does nothing twice for a redelivered webhook', async () => {
    const payload = pushToMaster();
    const first = await harness.deliver('push', payload);
    await waitFor(() => completed().length === 1, 'the first delivery to be reported');

    await harness.idle();
    const calls = github.calls.length;
    const handled = await harness.deliveryJob(first.delivery);
    expect(handled).toMatchObject({ state: 'completed', attemptsMade: 1 });

    const again = await harness.deliver('push', payload, { delivery: first.delivery });
    expect(again.status).toBe(200);
    // The answer comes after the delivery is queued: once the queues are idle, anything it
    // caused has run.
    await harness.idle();
    expect(await harness.deliveryJob(first.delivery)).toEqual(handled);
    expect(github.calls.length).toBe(calls);
    expect(harness.built).toHaveLength(1);
  });

  it('ignores tag pushes and branch deletions', async () => {
    const tag = example(
      'push',
      (p) => p.ref.startsWith('refs/tags/') && !p.deleted && p.installation === undefined,
    );
    tag.installation = { id: 1, node_id: 'x' };
    const deletion = example('push', (p) => p.deleted && p.installation);
    deletion.ref = 'refs/heads/old-branch';
    const deliveries = [
      await harness.deliver('push', tag),
      await harness.deliver('push', deletion),
    ];
    expect(deliveries.map((delivery) => delivery.status)).toEqual([200, 200]);
    await harness.idle();
    for (const { delivery } of deliveries) {
      expect(await harness.deliveryJob(delivery)).toBeUndefined();
    }
    expect(github.calls).toEqual([]);
    expect(harness.built).toEqual([]);
  });
});

describe('webhook signatures', () => {
  it('answers 401 to a wrong signature, enqueues nothing and logs one short line', async () => {
    const logged = harness.logs.length;
    const response = await harness.deliver('push', pushToMaster(), { secret: 'not-the-secret' });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.text).error).toMatch(/WEBHOOK_SECRET/);
    await harness.idle();
    expect(await harness.deliveryJob(response.delivery)).toBeUndefined();
    expect(github.calls).toEqual([]);
    expect(harness.built).toEqual([]);
    const lines = harness.logs.slice(logged);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/signature does not match/);
    expect(lines[0]!.length).toBeLessThan(300);
  });
});

/** The pull request example, at `sha`, updated at `updatedAt`. */
function pullRequestAt(action: string, sha: string, updatedAt: string) {
  const payload = pullRequest(action);
  payload.pull_request.head.sha = sha;
  payload.pull_request.updated_at = updatedAt;
  return payload;
}

describe('pull requests', () => {
  it('keeps one comment with the launch badge: created once, updated for a new head, never duplicated', async () => {
    const issue = `${OWNER}/${REPO}#2`;
    // More than a page of other people's comments: the app must look past the first page.
    for (let i = 0; i < 120; i += 1) github.addComment(issue, `comment ${i}`);

    // The build waits until the comment is made, so the comment's first words are certain.
    const release = harness.hold(HEAD);
    await harness.deliver('pull_request', pullRequestAt('opened', HEAD, '2019-05-15T15:20:33Z'));
    await waitFor(() => github.commentsOn(issue).length === 1, 'the comment to be made');
    release();
    await waitFor(() => completed().length === 1, 'the first check run to complete');
    await waitFor(
      () => github.commentsOn(issue)[0]?.body.includes('✅') ?? false,
      'the comment to say built',
    );
    // The pull request waits for its commit's build under this service's namespace, in no key
    // that another service on the same Redis would read or clear.
    expect(
      await harness.redis.hkeys(`${harness.namespace}:github:prs:${OWNER}/${REPO}@${HEAD}`),
    ).toEqual(['2']);
    // And its writes are spaced by a rate limiter of this service's own in Redis.
    expect(await harness.redis.keys(`b_octokit-write-${harness.namespace}*`)).not.toEqual([]);
    const [comment] = github.commentsOn(issue);
    expect(github.commentsOn(issue)).toHaveLength(1);
    expect(comment!.body).toContain(
      `<!-- bindery:launch-badge head=${HEAD} updated=2019-05-15T15:20:33Z -->`,
    );
    expect(comment!.body).toContain(`(https://bindery.test/v2/gh/${OWNER}/${REPO}/${HEAD})`);
    expect(comment!.body).toContain(`https://bindery.test/v2/gh/${OWNER}/${REPO}/changes`);
    const created = github.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/comments'));
    expect(created).toHaveLength(1);
    expect(created[0]!.body!.body).toContain('⏳ building');

    await harness.deliver(
      'pull_request',
      pullRequestAt('synchronize', NEXT_HEAD, '2019-05-16T10:00:00Z'),
    );
    await waitFor(() => completed().length === 2, 'the second check run to complete');
    await waitFor(
      () =>
        github.commentsOn(issue)[0]?.body.includes(`head=${NEXT_HEAD}`) === true &&
        github.commentsOn(issue)[0]!.body.includes('✅'),
      'the comment to move to the new head',
    );
    expect(github.commentsOn(issue)).toHaveLength(1);
    expect(github.commentsOn(issue)[0]!.id).toBe(comment!.id);
    expect(
      github.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/comments')),
    ).toHaveLength(1);

    // A late delivery of the older event changes nothing.
    const patches = github.calls.filter(
      (c) => c.method === 'PATCH' && c.path.includes('/issues/comments/'),
    ).length;
    await harness.deliver('pull_request', pullRequestAt('reopened', HEAD, '2019-05-15T15:20:33Z'));
    await waitFor(
      () => harness.logs.some((line) => line.includes('comment unchanged')),
      'the stale event to be handled',
    );
    expect(
      github.calls.filter((c) => c.method === 'PATCH' && c.path.includes('/issues/comments/')),
    ).toHaveLength(patches);
    expect(github.commentsOn(issue)[0]!.body).toContain(`head=${NEXT_HEAD}`);
  });

  it('makes one build and one check run of ten events for one commit', async () => {
    const deliveries = [
      ...Array.from({ length: 5 }, () =>
        harness.deliver('pull_request', pullRequestAt('synchronize', HEAD, '2019-05-15T15:20:33Z')),
      ),
      ...Array.from({ length: 5 }, () => {
        const push = pushToMaster();
        push.after = HEAD;
        return harness.deliver('push', push);
      }),
    ];
    expect((await Promise.all(deliveries)).map((d) => d.status)).toEqual(Array(10).fill(200));
    await harness.idle();
    expect(harness.built).toHaveLength(1);
    expect(github.checkRuns).toHaveLength(1);
    expect(github.commentsOn(`${OWNER}/${REPO}#2`)).toHaveLength(1);
  });

  it('skips pull requests from forks unless the settings allow them, and says why', async () => {
    const fromFork = pullRequestAt('opened', HEAD, '2019-05-15T15:20:33Z');
    fromFork.pull_request.head.repo.full_name = 'someone/Hello-World';
    await harness.deliver('pull_request', fromFork);
    await waitFor(() => completed().length === 1, 'the skipped check run');
    expect(github.checkRuns[0]).toMatchObject({ head_sha: HEAD, conclusion: 'skipped' });
    expect(github.checkRuns[0]!.output).toMatchObject({
      summary: expect.stringContaining('forks: true'),
    });
    expect(harness.built).toEqual([]);
    expect(github.commentsOn(`${OWNER}/${REPO}#2`)).toEqual([]);
  });

  it('builds fork pull requests when allowed, but never those of a private repository', async () => {
    github.addRepository({
      owner: OWNER,
      name: REPO,
      files: { '.github/bindery.yml': 'forks: true\n' },
    });
    const fromFork = pullRequestAt('opened', HEAD, '2019-05-15T15:20:33Z');
    fromFork.pull_request.head.repo.full_name = 'someone/Hello-World';
    await harness.deliver('pull_request', fromFork);
    await waitFor(() => completed().length === 1, 'the fork build');
    expect(github.checkRuns[0]!.conclusion).toBe('success');
    expect(harness.built[0]!.installationId).toBeUndefined();

    const privateFork = pullRequestAt('opened', NEXT_HEAD, '2019-05-16T15:20:33Z');
    privateFork.pull_request.head.repo.full_name = 'someone/Hello-World';
    privateFork.repository.private = true;
    await harness.deliver('pull_request', privateFork);
    await waitFor(() => completed().length === 2, 'the private fork check');
    expect(github.checkRuns[1]).toMatchObject({ head_sha: NEXT_HEAD, conclusion: 'skipped' });
    expect(github.checkRuns[1]!.output).toMatchObject({
      summary: expect.stringContaining('private'),
    });
    expect(harness.built).toHaveLength(1);
  });

  it("builds a private repository's own pull requests with the installation's credentials, its log kept off the public page", async () => {
    const own = pullRequestAt('opened', HEAD, '2019-05-15T15:20:33Z');
    own.repository.private = true;
    await harness.deliver('pull_request', own);
    await waitFor(() => completed().length === 1, 'the private build');
    expect(harness.built[0]!.installationId).toBe(own.installation.id);
    const create = github.calls.find((c) => c.method === 'POST' && c.path.endsWith('/check-runs'));
    expect(create!.body).not.toHaveProperty('details_url');
    expect(github.commentsOn(`${OWNER}/${REPO}#2`)[0]!.body).toContain(
      'This repository is private',
    );
  });
});

describe('repository settings', () => {
  it('turns the check run and the comment off, and still prebuilds, once', async () => {
    github.addRepository({
      owner: OWNER,
      name: REPO,
      files: { '.github/bindery.yml': 'check: false\ncomment: false\n' },
    });
    const fresh = '2222222222222222222222222222222222222222';
    await harness.deliver('pull_request', pullRequestAt('opened', fresh, '2019-05-15T15:20:33Z'));
    await waitFor(() => harness.built.length === 1, 'the build');
    await harness.idle();
    await harness.deliver(
      'pull_request',
      pullRequestAt('synchronize', fresh, '2019-05-15T15:20:34Z'),
    );
    await harness.idle();
    expect(harness.built).toHaveLength(1);
    expect(github.checkRuns).toEqual([]);
    expect(github.comments.filter((c) => c.user.type === 'Bot')).toEqual([]);
    expect(github.apiCalls).toEqual(
      Array(2).fill(`GET /repos/${OWNER}/${REPO}/contents/.github/bindery.yml`),
    );
  });

  it("falls back to the owner's .github repository, where failures can be set not to block merging", async () => {
    github.addRepository({
      owner: OWNER,
      name: '.github',
      files: { '.github/bindery.yml': 'failureConclusion: neutral\n' },
    });
    harness.failing.add(PUSHED);
    await harness.deliver('push', pushToMaster());
    await waitFor(() => completed().length === 1, 'the failed build to be reported');
    expect(github.checkRuns[0]).toMatchObject({ conclusion: 'neutral' });
    const { durationMs } = (await harness.finalEvent(harness.built[0]!.imageName))!;
    expect(github.checkRuns[0]!.output).toMatchObject({
      title: 'Build failed',
      summary: expect.stringContaining(
        `could not be built in ${formatDuration(durationMs!)}: postBuild failed with exit code 1.`,
      ),
    });
  });

  it("reads the settings from the default branch only, never from the pull request's own commit or branch", async () => {
    // The pull request's commit and branch (and the fork it comes from) turn forks on; the
    // default branch has no settings file, so forks are not built.
    const forksOn = { '.github/bindery.yml': 'forks: true\n' };
    github.addRepository({
      owner: OWNER,
      name: REPO,
      defaultBranch: 'master',
      branches: { master: PUSHED, changes: HEAD },
      filesAt: { [HEAD]: forksOn, changes: forksOn },
    });
    github.addRepository({ owner: 'someone', name: REPO, files: forksOn });
    const fromFork = pullRequestAt('opened', HEAD, '2019-05-15T15:20:33Z');
    fromFork.pull_request.head.repo.full_name = `someone/${REPO}`;
    await harness.deliver('pull_request', fromFork);
    await waitFor(() => completed().length === 1, 'the skipped check run');

    expect(github.checkRuns[0]).toMatchObject({ head_sha: HEAD, conclusion: 'skipped' });
    expect(harness.built).toEqual([]);
    expect(github.contentsReads).toEqual([
      { repository: `${OWNER}/${REPO}`, path: '.github/bindery.yml', ref: undefined },
      { repository: `${OWNER}/.github`, path: '.github/bindery.yml', ref: undefined },
    ]);
  });

  it('reports an invalid settings file on the check run and builds nothing', async () => {
    github.addRepository({
      owner: OWNER,
      name: REPO,
      files: { '.github/bindery.yml': 'fork: true\nfailureConclusion: maybe\n' },
    });
    await harness.deliver('push', pushToMaster());
    await waitFor(() => completed().length === 1, 'the settings check run');
    await harness.deliver('push', pushToMaster());
    await harness.idle();
    expect(github.checkRuns).toHaveLength(1);
    expect(github.checkRuns[0]).toMatchObject({ head_sha: PUSHED, conclusion: 'failure' });
    const { summary } = github.checkRuns[0]!.output as { summary: string };
    expect(summary).toContain('`fork` is not a setting Bindery knows');
    expect(summary).toContain('`failureConclusion`');
    expect(harness.built).toEqual([]);
  });

  it('prebuilds other branches only when listed', async () => {
    github.addRepository({
      owner: OWNER,
      name: REPO,
      defaultBranch: 'master',
      files: { '.github/bindery.yml': 'branches: ["release/*"]\n' },
    });
    const feature = pushToMaster();
    feature.ref = 'refs/heads/feature/x';
    await harness.deliver('push', feature);
    const release = pushToMaster();
    release.ref = 'refs/heads/release/1.0';
    release.after = NEXT_HEAD;
    await harness.deliver('push', release);
    await waitFor(() => completed().length === 1, 'the release branch build');
    expect(harness.built.map((job) => job.ref)).toEqual([NEXT_HEAD]);
    await waitFor(
      () => harness.logs.some((l) => l.includes('not built')),
      'the feature push to be passed over',
    );
  });
});

describe('installations and re-runs', () => {
  it("prebuilds each repository's default branch when the app is installed", async () => {
    await harness.deliver(
      'installation',
      example('installation', (p) => p.action === 'created'),
    );
    await waitFor(() => completed().length === 1, 'the installation prebuild');
    expect(github.apiCalls.slice(0, 2)).toEqual([
      `GET /repos/${OWNER}/${REPO}`,
      `GET /repos/${OWNER}/${REPO}/branches/master`,
    ]);
    expect(harness.built.map((job) => job.ref)).toEqual([PUSHED]);
  });

  it('prebuilds repositories added to an installation', async () => {
    github.addRepository({
      owner: OWNER,
      name: 'Space',
      defaultBranch: 'main',
      branches: { main: NEXT_HEAD },
    });
    await harness.deliver(
      'installation_repositories',
      example('installation_repositories', (p) => p.action === 'added'),
    );
    await waitFor(() => completed().length === 1, 'the added repository prebuild');
    expect(harness.built.map((job) => `${job.spec.repoLabel}@${job.ref}`)).toEqual([
      `gh/${OWNER}/Space@${NEXT_HEAD}`,
    ]);
  });

  it('builds again when a check suite is re-run', async () => {
    await harness.deliver('pull_request', pullRequestAt('opened', HEAD, '2019-05-15T15:20:33Z'));
    await waitFor(() => completed().length === 1, 'the first build');
    await harness.idle();
    await harness.deliver(
      'check_suite',
      example('check_suite', (p) => p.action === 'rerequested'),
    );
    await waitFor(() => completed().length === 2, 'the re-run');
    expect(harness.built).toHaveLength(2);
    expect(github.checkRuns.map((run) => run.head_sha)).toEqual([HEAD, HEAD]);
    // The re-run reports on the pull request's comment; it never makes a second one.
    expect(github.commentsOn(`${OWNER}/${REPO}#2`)).toHaveLength(1);
  });

  it('builds again when a check run is re-run, with a new check run', async () => {
    await harness.deliver('push', pushToMaster());
    await waitFor(() => completed().length === 1, 'the first build');
    const rerun = example('check_run', (p) => p.action === 'rerequested');
    rerun.check_run.name = 'Bindery';
    rerun.check_run.head_sha = PUSHED;
    rerun.repository = pushToMaster().repository;
    await harness.deliver('check_run', rerun);
    await waitFor(() => completed().length === 2, 'the re-run');
    expect(harness.built).toHaveLength(2);
    expect(github.checkRuns.map((run) => run.head_sha)).toEqual([PUSHED, PUSHED]);
  });

  it('waits out a used-up rate limit and carries on', async () => {
    github.limitRate(1);
    await harness.deliver('push', pushToMaster());
    await waitFor(() => completed().length === 1, 'the build after the rate limit');
    expect(github.calls[0]!.path).toBe(github.calls[1]!.path);
    expect(harness.logs.some((line) => /rate limit|quota/i.test(line))).toBe(true);
  });
});
