import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { launchChromium, type Chromium } from './launch-chromium.js';

/**
 * The launch page in a real browser: Chromium opens /v2/…, the page's own script follows
 * /build, and its redirect must land in the session at the path BinderHub's client would open,
 * with the token accepted.
 */

const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(4).toString('hex');
const SCREENSHOT = `/tmp/bindery-launch-page-${run}.png`;

let git: GitServer;
let repo: { url: string; sha: string };
let service: TestService;
let publicUrl: string;
let browser: Chromium;

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.publish('demo', FIXTURE);
  service = await startTestService('e2e', {
    // Every launch here comes from 127.0.0.1; the default of 10 a minute would refuse some.
    BINDERY_LAUNCH_RATE_LIMIT: '1000',
  });
  publicUrl = service.url;
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await service?.remove();
  await git?.close();
}, 120_000);

const launchUrl = (query: string) =>
  `${publicUrl}/v2/git/${encodeURIComponent(repo.url)}/HEAD${query}`;
const quoted = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sessionPath = /^\/user\/bindery-[0-9a-f]{12}\//;

/** What the browser did after the launch page sent it into the session. */
interface Landing {
  page: Page;
  /** The URL the page's script navigated to (the first request into /user/…). */
  target: string;
  /** The main frame's URL when it first arrived in the session (fragment included). */
  arrived: string;
  /** The last main-frame response, after the Jupyter server's own redirects. */
  final: { url: string; status: number };
  /** `<public url>/user/<session>/` */
  sessionUrl: string;
}

/** Opens the launch page with `query` and waits until the browser has loaded the session. */
async function launchInBrowser(query: string, onPage?: (page: Page) => Promise<void>) {
  const page = await browser.context.newPage();
  const responses: { url: string; status: number }[] = [];
  const arrivals: string[] = [];
  page.on('response', (response) => {
    if (response.request().isNavigationRequest() && response.frame() === page.mainFrame()) {
      responses.push({ url: response.url(), status: response.status() });
    }
  });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) arrivals.push(frame.url());
  });
  const inSession = (url: string) => sessionPath.test(new URL(url).pathname);
  await page.goto(launchUrl(query));
  await onPage?.(page);
  await page.waitForURL((url) => inSession(url.href), { timeout: 240_000 });
  const target = responses.find((response) => inSession(response.url))!.url;
  return {
    page,
    target,
    arrived: arrivals.find(inSession)!,
    final: responses.at(-1)!,
    sessionUrl: `${publicUrl}${sessionPath.exec(new URL(target).pathname)![0]}`,
  } satisfies Landing;
}

/**
 * The page's redirect went to `<session>/<path>?token=…`, and the session took the token: no
 * error status, no login page, and the browser's own cookie now opens the session's API.
 */
async function expectLandedAt(landing: Landing, path: string) {
  expect(landing.target).toMatch(
    new RegExp(
      `^${quoted(publicUrl)}/user/bindery-[0-9a-f]{12}/${quoted(path)}token=[0-9a-f]{48}$`,
    ),
  );
  expect(landing.final.status).toBeLessThan(400);
  expect(landing.final.url.startsWith(landing.sessionUrl)).toBe(true);
  expect(new URL(landing.final.url).pathname).not.toMatch(/\/login$/);
  // Through the context's request API, which sends the browser's cookies: a fetch from the page
  // itself failed ("Failed to fetch") when JupyterLab navigated the page meanwhile.
  const api = await landing.page.context().request.get(`${landing.sessionUrl}api/status`);
  expect(api.status()).toBe(200);
  await landing.page.close();
}

describe('the launch page in Chromium', () => {
  test('follows the build, showing its phase and log, then opens the session', async () => {
    const landing = await launchInBrowser('', async (page) => {
      await waitFor(
        async () => (await page.locator('#phase').textContent()) === 'building',
        'the building phase',
        180_000,
      );
      // Read together: the same event sets both.
      expect(
        await page.evaluate(
          "[document.getElementById('phase').textContent, document.getElementById('message').textContent]",
        ),
      ).toEqual(['building', 'Building the environment; the log below shows each step.']);
      // The log is open from the start: nothing to click.
      await waitFor(
        async () => ((await page.locator('#log').textContent()) ?? '').split('\n').length > 5,
        'a few lines of build log',
        60_000,
      );
      expect(await page.locator('h1').textContent()).toBe('Starting your Binder');
      // The repository as a person writes it, not URL-escaped.
      expect(await page.locator('#repo-name').textContent()).toBe(repo.url);
      await page.screenshot({ path: SCREENSHOT });
    });
    await expectLandedAt(landing, '?');
  }, 300_000);

  test.each([
    ['no parameter', '', '?'],
    ['urlpath=lab/tree/index.ipynb', '?urlpath=lab/tree/index.ipynb', 'lab/tree/index.ipynb?'],
    [
      'urlpath with a leading slash',
      '?urlpath=%2Flab%2Ftree%2Findex.ipynb',
      'lab/tree/index.ipynb?',
    ],
    ['labpath=index.ipynb', '?labpath=index.ipynb', 'doc/tree/index.ipynb?'],
    ['filepath=index.ipynb', '?filepath=index.ipynb', 'tree/index.ipynb?'],
  ])(
    '%s opens the session there, with its token',
    async (_name, query, path) => {
      await expectLandedAt(await launchInBrowser(query), path);
    },
    300_000,
  );

  test('a urlpath with its own query and fragment keeps both', async () => {
    const landing = await launchInBrowser(`?urlpath=${encodeURIComponent('lab?reset=1#top')}`);
    expect(landing.arrived).toMatch(/\/lab\?reset=1&token=[0-9a-f]{48}#top$/);
    await expectLandedAt(landing, 'lab?reset=1&');
  }, 300_000);

  test('a urlpath that climbs out of the session opens its default page instead', async () => {
    const landing = await launchInBrowser(`?urlpath=${encodeURIComponent('../../v2/')}`);
    await expectLandedAt(landing, '?');
  }, 300_000);
});
