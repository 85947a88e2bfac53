import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { PAGE_CSP } from '../../src/web/page-headers.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { launchChromium, type Chromium } from './launch-chromium.js';

/**
 * Bindery's own pages in Chromium, as a visitor meets them: the home page's form and badges,
 * the launch page following a build into JupyterLab (through a dropped event stream too), a
 * failing build's view and its log page, HTML in a repository name, and the pages' headers.
 * Each page's screenshot goes to test-artifacts/pages/.
 */

const exec = promisify(execFile);
const FIXTURES = join(import.meta.dirname, '../fixtures/repos');
const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts/pages');
const SLOW_LINES = 8;

let git: GitServer;
let service: TestService;
let browser: Chromium;
let relay: Relay;
let work: string;
/** `/logs/<image>` of the failing repository's build, once the failure test has seen it. */
let brokenLogPath = '/logs/bindery%2Fnone:x';
const repos: Record<'demo' | 'slow' | 'broken', { url: string; sha: string }> = {} as never;

/**
 * A TCP relay in front of the service, so the test can drop the launch page's event stream the
 * way a proxy or a restarting server would: `dropBuildStreams` closes the browser's socket of
 * every `/build/…` request under way. It records each such request's head.
 */
interface Relay {
  url: string;
  buildRequests: string[];
  dropBuildStreams(): number;
  close(): Promise<void>;
}

async function startRelay(target: URL): Promise<Relay> {
  const builds = new Set<Socket>();
  const open = new Set<Socket>();
  const buildRequests: string[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection(Number(target.port), target.hostname);
    open.add(client).add(upstream);
    // Chromium keeps connections alive: the event stream may follow the page on one socket.
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (text.startsWith('GET /build/')) {
        builds.add(client);
        buildRequests.push(text.slice(0, text.indexOf('\r\n\r\n')));
      }
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      builds.delete(client);
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    buildRequests,
    dropBuildStreams() {
      const count = builds.size;
      for (const socket of builds) socket.destroy();
      return count;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'bindery-pages-'));
  git = await startGitServer();
  repos.demo = await git.publish('demo', join(FIXTURES, 'default'));
  // The default repository and a postBuild that writes a numbered line a second: a build that
  // is still running when the test drops its event stream.
  const slow = join(work, 'slow');
  await cp(join(FIXTURES, 'default'), slow, { recursive: true });
  await writeFile(
    join(slow, 'postBuild'),
    `#!/bin/sh\nfor i in $(seq 1 ${SLOW_LINES}); do echo "slow-line-$i"; sleep 1; done\n`,
    { mode: 0o755 },
  );
  repos.slow = await git.publish('slow', slow);
  repos.broken = await git.publish('broken', join(FIXTURES, 'postbuild-fails'));
  service = await startTestService('pages', {
    // Every launch here comes from 127.0.0.1; the default of 10 a minute would refuse some.
    BINDERY_LAUNCH_RATE_LIMIT: '1000',
  });
  relay = await startRelay(new URL(service.url));
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await relay?.close();
  await service?.remove();
  await git?.close();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

const launchPath = (repo: { url: string }, query = '') =>
  `/v2/git/${encodeURIComponent(repo.url)}/HEAD${query}`;
const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const sessionPath = /^\/user\/bindery-[0-9a-f]{12}\//;

/**
 * Names of this service's sessions started from `repo`, by their Docker labels (asked with the
 * docker command: an engine's connection would keep jest waiting after the tests).
 */
async function sessionsOf(repo: { url: string }): Promise<string[]> {
  const { stdout } = await exec('docker', [
    'ps',
    '--all',
    '--filter',
    `label=bindery.store=${service.namespace}`,
    '--filter',
    `label=bindery.repo=git/${repo.url}`,
    '--format',
    '{{.Label "bindery.session"}}',
  ]);
  return stdout.split('\n').filter(Boolean);
}

/** Watches `#log` until the page leaves, keeping its last text (the lines shown before the redirect). */
function recordLog(page: Page) {
  let last = '';
  let stop = false;
  const done = (async () => {
    while (!stop) {
      try {
        last = (await page.locator('#log').textContent({ timeout: 1000 })) ?? last;
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    text: () => last,
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe('the home page', () => {
  /** Fills the form, sends it, and reads the launch URL and the three badges. */
  async function makeLink(
    page: Page,
    fields: { provider?: string; repo: string; ref?: string; path?: string; pathType?: string },
  ) {
    await page.goto(`${service.url}/`);
    if (fields.provider) await page.selectOption('#provider', fields.provider);
    await page.fill('#repo', fields.repo);
    if (fields.ref) await page.fill('#ref', fields.ref);
    if (fields.path) await page.fill('#path', fields.path);
    if (fields.pathType) await page.selectOption('#pathType', fields.pathType);
    await Promise.all([page.waitForURL(/\?/), page.click('button[type=submit]')]);
    return {
      url: await page.inputValue('#launch-url'),
      markdown: await page.inputValue('#badge-markdown'),
      rst: await page.inputValue('#badge-rst'),
      html: await page.inputValue('#badge-html'),
      launchHref: await page.getAttribute('#launch', 'href'),
    };
  }

  test.each([
    [
      'GitHub',
      { provider: 'gh', repo: 'binder-examples/requirements' },
      '/v2/gh/binder-examples/requirements/HEAD',
    ],
    [
      'a pasted GitHub address with a branch',
      { repo: 'https://github.com/binder-examples/requirements/tree/main', path: 'index.ipynb' },
      '/v2/gh/binder-examples/requirements/main?labpath=index.ipynb',
    ],
    [
      'GitLab',
      { provider: 'gl', repo: 'group/sub/project', ref: 'v1.0' },
      '/v2/gl/group%2Fsub%2Fproject/v1.0',
    ],
    [
      'a gist',
      { provider: 'gist', repo: 'jdoe/0123abcd', path: 'lab/tree/x.ipynb', pathType: 'url' },
      '/v2/gist/jdoe/0123abcd/HEAD?urlpath=lab%2Ftree%2Fx.ipynb',
    ],
    [
      'any git URL',
      { provider: 'git', repo: 'https://git.example.org/a/b.git', ref: 'feature/x' },
      '/v2/git/https%3A%2F%2Fgit.example.org%2Fa%2Fb.git/feature%2Fx',
    ],
  ])(
    '%s gives the launch URL and the exact badge markup',
    async (_name, fields, path) => {
      const page = await browser.context.newPage();
      const link = await makeLink(page, fields);
      const url = `${service.url}${path}`;
      const badge = `${service.url}/badge_logo.svg`;
      expect(link).toEqual({
        url,
        markdown: `[![Binder](${badge})](${url})`,
        rst: `.. image:: ${badge}\n :target: ${url}`,
        html: `<a href="${url.replace(/&/g, '&amp;')}"><img src="${badge}" alt="Launch Binder"></a>`,
        launchHref: url,
      });
      // The badge image the markup points at is this service's.
      const image = await page.context().request.get(badge);
      expect(image.headers()['content-type']).toMatch(/^image\/svg\+xml/);
      if ('provider' in fields && fields.provider === 'gh') await shot(page, 'home-with-badges');
      await page.close();
    },
    60_000,
  );

  test('invalid input is explained next to its field, and the limits are listed', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${service.url}/`);
    await page.selectOption('#provider', 'gh');
    await page.fill('#repo', 'just-a-name');
    await page.fill('#ref', 'bad ref');
    await Promise.all([page.waitForURL(/\?/), page.click('button[type=submit]')]);
    expect(await page.textContent('#repo-error')).toContain('owner/name');
    expect(await page.textContent('#ref-error')).toContain('is not a valid git ref');
    expect(await page.getAttribute('#repo', 'aria-invalid')).toBe('true');
    expect(await page.locator('#launch-url').count()).toBe(0);
    expect(await page.textContent('#limits')).toContain('1 CPU and 1 GiB of memory');
    expect(await page.textContent('#limits')).toContain('after 10 min without activity');
    expect(await page.getAttribute('meta[name=viewport]', 'content', { timeout: 1000 })).toContain(
      'width=device-width',
    );
    await shot(page, 'home-invalid-input');
    // On a phone-sized screen the form fits the width: nothing scrolls sideways.
    await page.setViewportSize({ width: 375, height: 740 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await shot(page, 'home-phone');
    await page.close();
  }, 60_000);
});

describe('the launch page', () => {
  test('shows the build log as it comes, then opens a working JupyterLab', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${service.url}${launchPath(repos.demo)}`);
    expect(await page.textContent('#repo-name')).toBe(repos.demo.url);
    expect(await page.textContent('#repo-ref')).toBe('HEAD');
    const log = recordLog(page);
    await waitFor(
      async () =>
        (await page.locator('#phase').textContent()) === 'building' &&
        log.text().split('\n').length > 5,
      'a few lines of build log while building',
      180_000,
    );
    expect(await page.locator('#log-box').getAttribute('open')).not.toBeNull();
    expect(await page.getAttribute('#steps li[data-phase=building]', 'class')).toBe('current');
    expect(await page.getAttribute('#favicon', 'href')).toBe('/static/favicon-building.svg');
    expect(await page.textContent('#elapsed')).toMatch(/^\d+ s$|min/);
    await shot(page, 'launch-building');
    await page.waitForURL((url) => sessionPath.test(url.pathname), { timeout: 240_000 });
    await log.stop();
    expect(log.text()).toContain('Waiting for build to start');
    // JupyterLab itself comes up in the page: its shell renders and its launcher shows.
    await page.waitForSelector('#jp-main-dock-panel', { timeout: 120_000 });
    // Its file browser lists the repository through the session's contents API.
    await page.waitForSelector('.jp-DirListing-item:has-text("index.ipynb")', {
      timeout: 120_000,
    });
    expect(new URL(page.url()).pathname).toMatch(/\/lab/);
    await shot(page, 'jupyterlab');
    await page.close();
  }, 420_000);

  test('a dropped event stream goes on where it was: no line twice, one session', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${relay.url}${launchPath(repos.slow)}`);
    const log = recordLog(page);
    await waitFor(
      () => log.text().includes('slow-line-2'),
      'the slow postBuild under way',
      240_000,
    );
    expect(relay.dropBuildStreams()).toBe(1);
    await waitFor(
      () => relay.buildRequests.length >= 2,
      'the page to open its event stream again',
      30_000,
    );
    await page.waitForURL((url) => sessionPath.test(url.pathname), { timeout: 240_000 });
    await log.stop();
    const lines = log.text().split('\n');
    const count = (text: string) => lines.filter((line) => line.includes(text)).length;
    for (let i = 1; i <= SLOW_LINES; i++) expect([i, count(`slow-line-${i}`)]).toEqual([i, 1]);
    expect(count('Waiting for build to start')).toBe(1);
    // The second request carried the last id the page saw, and the server went on after it.
    expect(relay.buildRequests[1]).toMatch(/\r\nlast-event-id: \d+-\d+/i);
    expect(await sessionsOf(repos.slow)).toHaveLength(1);
    await page.close();
  }, 480_000);

  test('a failing build shows why, links to its log, is not built again on the next visit, and retries on request', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${service.url}${launchPath(repos.broken)}`);
    await page.waitForSelector('#failure:not([hidden])', { timeout: 240_000 });
    const failure = await page.textContent('#failure-message');
    expect(failure).toContain('postBuild is failing on purpose');
    expect(failure).toContain('\n');
    expect(await page.textContent('#failed-step')).toBe('while building');
    expect(await page.getAttribute('#favicon', 'href')).toBe('/static/favicon-failed.svg');
    const logHref = (await page.getAttribute('#full-log', 'href'))!;
    brokenLogPath = logHref;
    expect(logHref).toMatch(/^\/logs\/bindery-test%2F.+%3A[0-9a-f]{40}$/);
    await shot(page, 'launch-failed');

    await page.click('#full-log');
    await page.waitForSelector('#state.failed');
    const finished = await page.locator('dd').nth(1).textContent();
    expect(await page.textContent('#log')).toContain('postBuild is failing on purpose');
    expect(await page.getAttribute('#launch-link', 'href')).toBe(
      `/v2/git/${encodeURIComponent(repos.broken.url)}/${repos.broken.sha}`,
    );
    await shot(page, 'build-log-failed');

    // The next visit shows the recorded failure at once: no second build (same finish time).
    await page.goto(`${service.url}${launchPath(repos.broken)}`);
    await page.waitForSelector('#failure:not([hidden])', { timeout: 30_000 });
    await page.goto(`${service.url}${logHref}`);
    expect(await page.locator('dd').nth(1).textContent()).toBe(finished);

    // The retry button builds again.
    await page.goto(`${service.url}${launchPath(repos.broken)}`);
    await page.waitForSelector('#failure:not([hidden])', { timeout: 30_000 });
    await page.click('#retry');
    await page.waitForSelector('#failure[hidden]', { state: 'attached' });
    await page.waitForSelector('#failure:not([hidden])', { timeout: 240_000 });
    await page.goto(`${service.url}${logHref}`);
    expect(await page.locator('dd').nth(1).textContent()).not.toBe(finished);
    await page.close();
  }, 600_000);

  test('a running build’s log page follows it live and links back to its launch page', async () => {
    // A new commit of the slow repository: its postBuild runs again, for several seconds.
    const sha = await git.commit('slow', { 'live.txt': 'live\n' });
    const launch = await browser.context.newPage();
    // Only its build matters here: the launch page's redirect into the session goes nowhere (a
    // page closed while JupyterLab was loading left a proxied connection open past the service).
    await launch.route('**/user/**', (route) => route.abort());
    const redirected = launch.waitForRequest(
      (request) => sessionPath.test(new URL(request.url()).pathname),
      {
        timeout: 240_000,
      },
    );
    await launch.goto(`${service.url}${launchPath(repos.slow)}`);
    await launch.waitForSelector('#log-page:not([hidden])', { timeout: 60_000 });
    const logPath = (await launch.getAttribute('#log-page', 'href'))!;
    const page = await browser.context.newPage();
    await page.goto(`${service.url}${logPath}`);
    expect(await page.textContent('#live-note')).toContain('follows the build');
    const before = (await page.textContent('#log')) ?? '';
    // A mark in the page's window: a reload would lose it.
    await page.evaluate('window.stillThisPage = true');
    await page.waitForSelector('#state.built', { timeout: 240_000 });
    expect(await page.locator('dt', { hasText: 'Running for' }).count()).toBe(0);
    const after = (await page.textContent('#log')) ?? '';
    expect(after.startsWith(before)).toBe(true);
    expect(after.length).toBeGreaterThan(before.length);
    expect(after).toContain(`slow-line-${SLOW_LINES}`);
    expect(after.split('\n').filter((line) => line.includes('slow-line-1'))).toHaveLength(1);
    expect(await page.evaluate('window.stillThisPage')).toBe(true);
    expect(await page.getAttribute('#launch-link', 'href')).toBe(
      `/v2/git/${encodeURIComponent(repos.slow.url)}/${sha}`,
    );
    await shot(page, 'build-log-followed');
    await page.close();
    // The session the launch page asked for has started before the service is taken down.
    await redirected;
    await launch.close();
  }, 300_000);

  test('a repository or ref with HTML in it shows as text', async () => {
    const page = await browser.context.newPage();
    // No build: the names resolve nowhere, and this test sends nothing off the machine.
    await page.route('**/build/**', (route) => route.abort());
    await page.goto(
      `${service.url}/v2/gl/${encodeURIComponent('<img src=x onerror=alert(1)>/p')}/${encodeURIComponent('<b>bold</b>')}`,
    );
    expect(await page.textContent('#repo-name')).toBe('<img src=x onerror=alert(1)>/p');
    expect(await page.textContent('#repo-ref')).toBe('<b>bold</b>');
    expect(await page.locator('main img, main b').count()).toBe(0);
    await shot(page, 'launch-html-in-name');
    await page.close();
  }, 60_000);
});

describe('headers', () => {
  test('pages carry a strict policy, no framing, no sniffing and no caching; sessions keep their own', async () => {
    const broken = await fetch(`${service.url}${brokenLogPath}`);
    expect(broken.status).toBe(200);
    await broken.arrayBuffer();
    for (const path of ['/', '/?repo=a%2Fb', launchPath(repos.demo), brokenLogPath, '/logs/x']) {
      const response = await fetch(`${service.url}${path}`);
      expect([path, response.headers.get('content-security-policy')]).toEqual([path, PAGE_CSP]);
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('cache-control')).toBe('no-store');
      await response.arrayBuffer();
    }
    const css = await fetch(`${service.url}/static/style.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.headers.get('cache-control')).toBe('no-cache');
    await css.arrayBuffer();
    // A session's answers are Jupyter's own: none of the pages' headers are added to them.
    const [session] = await sessionsOf(repos.demo);
    const jupyter = await fetch(`${service.url}/user/${session!}/api/status`);
    // Read to its end: an unread answer keeps the proxy's connection to the session busy.
    await jupyter.arrayBuffer();
    expect(jupyter.headers.get('content-security-policy')).not.toBe(PAGE_CSP);
    expect(jupyter.headers.get('x-frame-options')).toBeNull();
  }, 60_000);
});
