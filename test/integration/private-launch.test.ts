import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sign } from '@octokit/webhooks-methods';
import { Redis } from 'ioredis';
import nock from 'nock';
import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { NotFoundError } from '../../src/errors.js';
import { BuildLog } from '../../src/queue/build-log.js';
import { startService, type RunningService } from '../../src/service.js';
import { parseSpec } from '../../src/repos/repo-spec.js';
import { PrivateAccess } from '../../src/web/private-access.js';
import { captureLog } from '../helpers/capture-log.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { freePort } from '../helpers/free-port.js';
import { startGheServer } from '../helpers/ghe-server.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { testPrivateKey, WEBHOOK_SECRET } from '../helpers/github-harness.js';
import { removeTestSandbox, testSessionNetwork } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { webhookExample } from '../helpers/webhook-examples.js';

jest.setTimeout(240_000);
const exec = promisify(execFile);

const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const APP_ID = 4343;
const INSTALLATION = 88;
const INSTALLATION_TOKEN = `ghs_fake_installation_${INSTALLATION}`;
const CLIENT_ID = 'Iv1.private-launch';
const CLIENT_SECRET = 'client-secret-private-launch';
const run = randomBytes(4).toString('hex');
const namespace = `prl${run}`;
const prefix = `bindery-test/p${run}-`;
const network = testSessionNetwork(namespace);
const engine = new DockerEngine();
const redis = new Redis();
const github = new FakeGitHub(APP_ID);
const logs = captureLog('debug');

/** GitHub's users: their OAuth codes and tokens, and whether they can read secret/demo. */
const USERS = {
  alice: { id: 101, code: 'code-alice', token: 'gho_alice_token_private_launch', reads: true },
  eve: { id: 102, code: 'code-eve', token: 'gho_eve_token_private_launch', reads: false },
  bob: { id: 103, code: 'code-bob', token: 'gho_bob_token_private_launch', reads: true },
  carol: { id: 104, code: 'code-carol', token: 'gho_carol_token_private_launch', reads: true },
};
type Login = keyof typeof USERS;

let privateGit: GitServer;
let ghe: Awaited<ReturnType<typeof startGheServer>>;
let service: RunningService;
let url: string;
let sha: string;
/** The collaborator's session: its `ready` event. */
let launched: StreamEvent | undefined;
/** The PKCE challenges GitHub was shown at /login/oauth/authorize, by state. */
const challenges = new Map<string, string>();

/**
 * GitHub's side of sign-in and of a user's permission, played by nock on the GHE host: the
 * token exchange (checking the client secret and the PKCE verifier against the challenge),
 * `GET /user`, and `GET /repos/secret/demo` as each user's token sees it. Everything else on
 * that host (the app's own calls, git) goes to the fake GitHub and the git server.
 */
function playGitHubForUsers() {
  const scope = nock(`http://${ghe.host}`, { allowUnmocked: true }).persist();
  scope
    .post('/login/oauth/access_token', (body: Record<string, string>) => {
      const user = Object.values(USERS).find((u) => u.code === body.code);
      const challenge = [...challenges.values()].find(
        (c) =>
          c ===
          createHash('sha256')
            .update(body.code_verifier ?? '')
            .digest('base64url'),
      );
      return Boolean(
        user && challenge && body.client_id === CLIENT_ID && body.client_secret === CLIENT_SECRET,
      );
    })
    .reply(200, (_uri, body) => {
      const user = Object.values(USERS).find((u) => u.code === (body as { code: string }).code)!;
      return { access_token: user.token, token_type: 'bearer', scope: '' };
    });
  for (const [login, user] of Object.entries(USERS)) {
    const as = { reqheaders: { authorization: `Bearer ${user.token}` } };
    nock(`http://${ghe.host}`, { ...as, allowUnmocked: true })
      .persist()
      .get('/api/v3/user')
      .reply(200, { login, id: user.id })
      .get('/api/v3/repos/secret/demo')
      .reply(() =>
        USERS[login as Login].reads
          ? [200, { full_name: 'secret/demo', private: true, permissions: { pull: true } }]
          : [404, { message: 'Not Found' }],
      )
      .get(/^\/api\/v3\/repos\/secret\/demo\/commits\/[^/]+$/)
      .reply(() =>
        USERS[login as Login].reads
          ? [200, sha, { 'content-type': 'application/vnd.github.sha' }]
          : [404, { message: 'Not Found' }],
      );
  }
  // The app, authenticated as itself, finds its installation on the repository.
  nock(`http://${ghe.host}`, { allowUnmocked: true })
    .persist()
    .get('/api/v3/repos/secret/demo/installation')
    .reply(200, { id: INSTALLATION, app_id: APP_ID });
}

/** The Set-Cookie lines of a response, as `name=value` by name, with their attributes. */
function cookiesOf(response: Response): Map<string, { pair: string; attributes: string }> {
  const cookies = new Map<string, { pair: string; attributes: string }>();
  for (const line of response.headers.getSetCookie()) {
    const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
    cookies.set(pair.split('=')[0]!, { pair, attributes: attributes.join('; ') });
  }
  return cookies;
}

/** Signs `login` in as a browser would: /sign-in, GitHub's consent (played), the callback. */
async function signIn(login: Login, next = '/'): Promise<string> {
  const start = await fetch(`${url}/sign-in?next=${encodeURIComponent(next)}`, {
    redirect: 'manual',
  });
  expect(start.status).toBe(302);
  const authorize = new URL(start.headers.get('location')!);
  const state = authorize.searchParams.get('state')!;
  challenges.set(state, authorize.searchParams.get('code_challenge')!);
  const stateCookie = cookiesOf(start).get('bindery-sign-in')!.pair;
  const back = await fetch(
    `${url}/sign-in/callback?code=${USERS[login].code}&state=${encodeURIComponent(state)}`,
    { headers: { cookie: stateCookie }, redirect: 'manual' },
  );
  expect(back.status).toBe(302);
  expect(back.headers.get('location')).toBe(next);
  return cookiesOf(back).get('bindery-user')!.pair;
}

const launch = (spec: string, cookie?: string) =>
  readEventStream(`${url}/build/gh/${spec}`, { headers: cookie ? { cookie } : {} });
const failureOf = (events: StreamEvent[]) => events.find((event) => event.phase === 'failed');

beforeAll(async () => {
  nock.disableNetConnect();
  // Loopback servers, Docker's socket (which nock sees as localhost:80), and the sessions this
  // test starts on its own sandbox bridge (a private address).
  nock.enableNetConnect(
    (host) =>
      host === 'localhost:80' || /^(127\.|10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.)/.test(host),
  );
  privateGit = await startGitServer({ requireToken: INSTALLATION_TOKEN });
  await privateGit.publish('secret/demo', FIXTURE);
  sha = await privateGit.commit('secret/demo', { 'SECRET.md': `only for readers ${run}\n` });
  github.addRepository({
    owner: 'secret',
    name: 'demo',
    private: true,
    defaultBranch: 'main',
    branches: { main: sha },
  });
  ghe = await startGheServer(github, { secret: privateGit.url });
  playGitHubForUsers();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  service = await startService({
    config: loadConfig({
      PORT: String(port),
      BINDERY_PUBLIC_URL: url,
      BINDERY_IMAGE_PREFIX: prefix,
      BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
      GHE_HOST: ghe.host,
      GHE_PROTOCOL: 'http',
      APP_ID: String(APP_ID),
      PRIVATE_KEY: testPrivateKey(),
      WEBHOOK_SECRET,
      GITHUB_CLIENT_ID: CLIENT_ID,
      GITHUB_CLIENT_SECRET: CLIENT_SECRET,
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
  for (const container of await engine.listSessions()) {
    if (container.labels['bindery.store'] === namespace) await engine.removeContainer(container.id);
  }
  await ghe?.close();
  await privateGit?.close();
  nock.cleanAll();
  nock.enableNetConnect();
  // jest runs later test files in this process: give them Node's own HTTP back (nock's
  // interceptor, left in place, cut large streams through the proxy in later files).
  nock.restore();
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(image).catch(() => {});
  }
  const keys = [
    ...(await redis.keys(`${namespace}:*`)),
    ...(await redis.keys(`bull:*${namespace}*`)),
    ...(await redis.keys(`build:${prefix}*`)),
  ];
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await removeTestSandbox(loadConfig({ BINDERY_SESSION_NETWORK: network }));
});

/** What everyone who may not read secret/demo is told: what a missing repository gets. */
const missing = (repo: string) =>
  `GitHub has no repository secret/${repo} with a branch, tag or commit "main" (or the repository is private).`;

describe('sign-in with GitHub', () => {
  it("sends the visitor to GitHub's authorize page with state and a PKCE challenge, in an HttpOnly Lax cookie", async () => {
    const start = await fetch(`${url}/sign-in?next=/v2/gh/secret/demo/main`, {
      redirect: 'manual',
    });
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get('location')!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(
      `http://${ghe.host}/login/oauth/authorize`,
    );
    expect(Object.fromEntries(authorize.searchParams)).toEqual({
      client_id: CLIENT_ID,
      redirect_uri: `${url}/sign-in/callback`,
      state: expect.stringMatching(/^[\w-]{43}$/),
      code_challenge: expect.stringMatching(/^[\w-]{43}$/),
      code_challenge_method: 'S256',
    });
    const cookie = cookiesOf(start).get('bindery-sign-in')!;
    expect(cookie.pair).toBe(`bindery-sign-in=${authorize.searchParams.get('state')}`);
    expect(cookie.attributes).toBe('Path=/sign-in; Max-Age=600; HttpOnly; SameSite=Lax');
  });

  it('refuses a callback whose state this browser did not start, and a replayed one', async () => {
    const start = await fetch(`${url}/sign-in`, { redirect: 'manual' });
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const stateCookie = cookiesOf(start).get('bindery-sign-in')!.pair;
    const forged = await fetch(`${url}/sign-in/callback?code=${USERS.alice.code}&state=${state}`, {
      redirect: 'manual',
    });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('did not start in this browser');
    expect(forged.headers.getSetCookie()).toEqual([]);
    challenges.set(
      state,
      new URL(start.headers.get('location')!).searchParams.get('code_challenge')!,
    );
    const callback = `${url}/sign-in/callback?code=${USERS.alice.code}&state=${state}`;
    const first = await fetch(callback, { headers: { cookie: stateCookie }, redirect: 'manual' });
    expect(first.status).toBe(302);
    const again = await fetch(callback, { headers: { cookie: stateCookie }, redirect: 'manual' });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('expired or was used already');
  });

  it('signs in with an HttpOnly, SameSite=Lax cookie (not Secure over http) and signs out', async () => {
    const cookie = await signIn('alice', '/v2/gh/secret/demo/main');
    expect(cookie).toMatch(/^bindery-user=[\w-]{43}$/);
    const out = await fetch(`${url}/sign-out`, {
      method: 'POST',
      headers: { cookie },
      redirect: 'manual',
    });
    expect(out.status).toBe(303);
    expect(cookiesOf(out).get('bindery-user')).toEqual({
      pair: 'bindery-user=',
      attributes: 'Path=/; Max-Age=0; HttpOnly; SameSite=Lax',
    });
    // The old cookie names nobody now: a launch is anonymous again.
    const { events } = await launch('secret/demo/main', cookie);
    expect(failureOf(events)?.message).toContain('sign in with GitHub');
  });
});

describe('a private repository', () => {
  it('is the same 404 as a missing one for an anonymous visitor, who is sent to sign in', async () => {
    const [secret, nothing] = await Promise.all([
      launch('secret/demo/main'),
      launch('secret/nothing/main'),
    ]);
    const signInUrl = (repo: string) =>
      `${url}/sign-in?next=${encodeURIComponent(`/v2/gh/secret/${repo}/main`)}`;
    expect(failureOf(secret.events)).toEqual({
      phase: 'failed',
      status_code: 404,
      message: `${missing('demo')} To launch a private repository you can read, sign in with GitHub: ${signInUrl('demo')}\n`,
      sign_in_url: signInUrl('demo').slice(url.length),
    });
    expect(failureOf(nothing.events)).toEqual({
      phase: 'failed',
      status_code: 404,
      message: `${missing('nothing')} To launch a private repository you can read, sign in with GitHub: ${signInUrl('nothing')}\n`,
      sign_in_url: signInUrl('nothing').slice(url.length),
    });
    // The launch page has the button its script shows with that link.
    const page = await (await fetch(`${url}/v2/gh/secret/demo/main`)).text();
    expect(page).toContain('<a id="sign-in" class="button" hidden>Sign in with GitHub</a>');
    const followed = await fetch(signInUrl('demo'), { redirect: 'manual' });
    expect(followed.headers.get('location')).toMatch(/\/login\/oauth\/authorize\?/);
  });

  it('is the same 404 as a missing one for a signed-in user who cannot read it', async () => {
    const cookie = await signIn('eve');
    const [secret, nothing] = await Promise.all([
      launch('secret/demo/main', cookie),
      launch('secret/nothing/main', cookie),
    ]);
    expect(failureOf(secret.events)).toEqual({
      phase: 'failed',
      status_code: 404,
      message: `${missing('demo')}\n`,
    });
    expect(failureOf(nothing.events)?.message).toBe(`${missing('nothing')}\n`);
  });

  it("launches for a collaborator, fetched with the installation's token that ends up nowhere", async () => {
    const cookie = await signIn('alice');
    const { events } = await launch('secret/demo/main', cookie);
    const ready = events.at(-1)!;
    launched = ready;
    expect(failureOf(events)).toBeUndefined();
    expect(events.map((event) => event.phase)).toContain('building');
    expect(ready).toMatchObject({ phase: 'ready', url: expect.stringContaining('/user/') });
    const image = ready.image as string;
    expect(image.startsWith(prefix)).toBe(true);

    // The session serves the private commit.
    const contents = await fetch(`${ready.url}api/contents/SECRET.md?token=${ready.token}`, {
      headers: { cookie },
    });
    expect(contents.status).toBe(200);
    expect(JSON.stringify(await contents.json())).toContain(`only for readers ${run}`);

    // Neither the installation's token nor the user's appears in the image's history, its
    // files, the build log, the service's log or the session's environment.
    const secrets = [INSTALLATION_TOKEN, USERS.alice.token];
    const { stdout: history } = await exec('docker', ['history', '--no-trunc', image]);
    const { stdout: inspected } = await exec('docker', ['image', 'inspect', image]);
    const created = (await exec('docker', ['create', image])).stdout.trim();
    const count = async (pattern: string) =>
      (
        await exec('sh', ['-c', `docker export ${created} | grep -acE '${pattern}' || true`])
      ).stdout.trim();
    // The export holds the repository (the control), and neither token.
    expect(Number(await count(`only for readers ${run}`))).toBeGreaterThan(0);
    const files = { stdout: await count(secrets.join('|')) };
    await exec('docker', ['rm', created]);
    const buildLog = JSON.stringify(await new BuildLog(redis).read(image));
    const session = (await engine.listSessions()).find(
      (container) => container.labels['bindery.store'] === namespace,
    )!;
    const { stdout: sessionEnv } = await exec('docker', ['exec', session.id, 'env']);
    const { stdout: sessionInspect } = await exec('docker', ['inspect', session.id]);
    expect(buildLog).toContain('Fetching');
    expect(sessionEnv).toContain('BINDER_REPO_URL');
    for (const secret of secrets) {
      for (const place of [history, inspected, buildLog, logs.text(), sessionEnv, sessionInspect]) {
        expect(place).not.toContain(secret);
      }
    }
    expect(files.stdout.trim()).toBe('0');

    // Its build log is nobody's to read on the public page, and its badge is a missing one's.
    expect((await fetch(`${url}/logs/${image}`, { headers: { cookie } })).status).toBe(404);
    const badge = async (repo: string) => {
      const answer = await fetch(`${url}/status/gh/secret/${repo}/main.svg`);
      return { status: answer.status, body: await answer.text() };
    };
    expect(await badge('demo')).toEqual(await badge('nothing'));
    expect((await badge('demo')).status).toBe(404);
  });

  it('is reachable only by its launcher, token or not', async () => {
    expect(launched).toBeDefined();
    const file = `${launched!.url}api/contents/SECRET.md?token=${launched!.token}`;
    const alice = await signIn('alice');
    const eve = await signIn('eve');
    expect((await fetch(file, { headers: { cookie: alice } })).status).toBe(200);
    for (const headers of [{}, { cookie: eve }] as Record<string, string>[]) {
      const refused = await fetch(file, { headers });
      expect(refused.status).toBe(404);
      expect(await refused.text()).not.toContain('only for readers');
    }
    // Its session bar's Share is the expiring link, for its launcher; others do not reach it.
    const name0 = new URL(launched!.url as string).pathname.split('/')[2]!;
    const bar = `${url}/user/${name0}/_bindery/?token=${launched!.token}`;
    const traded = await fetch(bar, { headers: { cookie: alice }, redirect: 'manual' });
    expect(traded.status).toBe(303);
    const barCookie = traded.headers.getSetCookie()[0]!.split(';')[0]!;
    const page = await fetch(`${url}/user/${name0}/_bindery/`, {
      headers: { cookie: `${alice}; ${barCookie}` },
    });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/token=\w+&#38;bindery_share=[\w-]{32}"/);
    expect((await fetch(bar, { headers: { cookie: eve }, redirect: 'manual' })).status).toBe(404);
    // Nobody but its launcher gets a share link.
    const name = new URL(launched!.url as string).pathname.split('/')[2]!;
    const forEve = await fetch(`${url}/share/${name}`, {
      method: 'POST',
      headers: { cookie: eve },
    });
    expect(forEve.status).toBe(404);
  });

  it('is shared by a link that works for a collaborator until it expires, and not after they lose access', async () => {
    const name = new URL(launched!.url as string).pathname.split('/')[2]!;
    const alice = await signIn('alice');
    const bob = await signIn('bob');
    const carol = await signIn('carol');
    const eve = await signIn('eve');
    const shared = await fetch(`${url}/share/${name}`, {
      method: 'POST',
      headers: { cookie: alice },
    });
    expect(shared.status).toBe(200);
    const { url: link, expires_in_seconds } = (await shared.json()) as {
      url: string;
      expires_in_seconds: number;
    };
    expect(expires_in_seconds).toBe(3600);
    const shareId = new URL(link).searchParams.get('bindery_share')!;
    const viaLink = new URL(link);
    viaLink.pathname += 'api/contents/SECRET.md';
    const plain = `${launched!.url}api/contents/SECRET.md?token=${launched!.token}`;
    const status = async (target: string, cookie: string) =>
      (await fetch(target, { headers: { cookie } })).status;

    // Signed-in readers get in with the link, and then without it; a non-reader never does.
    expect(await status(viaLink.href, bob)).toBe(200);
    expect(await status(plain, bob)).toBe(200);
    expect(await status(viaLink.href, carol)).toBe(200);
    expect(await status(viaLink.href, eve)).toBe(404);
    expect(await status(viaLink.href, '')).toBe(404);

    // Bob loses access on GitHub: once the cached answer lapses, the link no longer lets him in.
    USERS.bob.reads = false;
    const cached = await redis.keys(`${namespace}:can-read:*`);
    await redis.del(...cached);
    expect(await status(viaLink.href, bob)).toBe(404);
    expect(await status(plain, bob)).toBe(404);
    expect(await status(plain, carol)).toBe(200);

    // The link expires (an hour, made a moment here): whoever it let in is out, its launcher not.
    await redis.pexpire(`${namespace}:private-share:${shareId}`, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await status(plain, carol)).toBe(404);
    expect(await status(viaLink.href, carol)).toBe(404);
    expect(await status(plain, alice)).toBe(200);
  });
});

describe("a private repository's check run", () => {
  it('links its launch to the sign-in flow, and not to a public log', async () => {
    const push = webhookExample('push', (p) => p.ref === 'refs/heads/master' && p.installation);
    Object.assign(push.repository, {
      name: 'demo',
      full_name: 'secret/demo',
      private: true,
      default_branch: 'main',
    });
    push.repository.owner.login = 'secret';
    push.installation.id = INSTALLATION;
    push.ref = 'refs/heads/main';
    push.after = sha;
    const body = JSON.stringify(push);
    const delivered = await fetch(`${url}/api/github/webhooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': randomBytes(16).toString('hex'),
        'x-hub-signature-256': await sign(WEBHOOK_SECRET, body),
      },
      body,
    });
    expect(delivered.status).toBe(200);
    const check = () => github.checkRuns.find((run) => run.head_sha === sha);
    await waitFor(() => check()?.status === 'completed', 'the check run to complete', 150_000);
    expect(check()!.conclusion).toBe('success');
    expect(check()!.details_url).toBeUndefined();
    const signInLink = `${url}/sign-in?next=${encodeURIComponent(`/v2/gh/secret/demo/${sha}`)}`;
    expect((check()!.output as { summary: string }).summary).toContain(
      `[Launch it](${signInLink})`,
    );
    expect(github.rejected).toEqual([]);
  });
});

describe('private repositories with sessions on host names of their own', () => {
  it('are refused, to a reader, with a sentence for the operator: sign-in would not reach the session', async () => {
    const config = loadConfig({
      BINDERY_PUBLIC_URL: 'http://127.0.0.1:8585',
      BINDERY_SESSION_HOST: '{session}.sessions.test',
      GHE_HOST: ghe.host,
      GHE_PROTOCOL: 'http',
      GITHUB_CLIENT_ID: CLIENT_ID,
      GITHUB_CLIENT_SECRET: CLIENT_SECRET,
    });
    const access = new PrivateAccess({
      config,
      redis,
      namespace,
      installationFor: async () => INSTALLATION,
    });
    const id = await access.users.add({ login: 'alice', ...USERS.alice });
    const request = { headers: { cookie: `bindery-user=${id}` } } as IncomingMessage;
    const spec = parseSpec('gh', 'secret/demo/main', { githubUrl: config.githubUrl });
    await expect(access.resolveForVisitor(spec, request, new Error('never'))).rejects.toThrow(
      'never',
    );
    await expect(
      access.resolveForVisitor(spec, request, new NotFoundError('missing')),
    ).rejects.toThrow(
      'secret/demo is private, and this Bindery serves sessions on host names of their own (BINDERY_SESSION_HOST)',
    );
  });
});
