import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import nock from 'nock';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { launchChromium, type Chromium } from './launch-chromium.js';

/**
 * An anonymous visitor's launch of a private repository (or of one that does not exist: GitHub
 * answers both alike), in a real browser: the launch page fails with the missing repository's
 * sentence and offers "Sign in with GitHub", which takes the browser to GitHub's authorize
 * page (played by the browser's own request routing; nothing leaves this machine).
 */

const CLIENT_ID = 'Iv1.e2e-private';
let service: TestService;
let browser: Chromium;

beforeAll(async () => {
  nock.disableNetConnect();
  // The service's own servers, and Docker's socket (which nock sees as localhost:80).
  nock.enableNetConnect((host) => host === 'localhost:80' || host.startsWith('127.0.0.1:'));
  // GitHub, asked without a token, hides a private repository as it hides a missing one.
  nock('https://api.github.com')
    .persist()
    .get(/^\/repos\/secret\/demo(\/commits\/main)?$/)
    .reply(404, { message: 'Not Found' });
  service = await startTestService('e2eprv', {
    GITHUB_CLIENT_ID: CLIENT_ID,
    GITHUB_CLIENT_SECRET: 'e2e-secret',
  });
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await service?.remove();
  nock.cleanAll();
  nock.enableNetConnect();
  // jest runs later test files in this process: give them Node's own HTTP back (nock's
  // interceptor, left in place, cut large streams through the proxy in later files).
  nock.restore();
}, 120_000);

describe('the launch page of a repository an anonymous visitor cannot see', () => {
  test('fails as for a missing repository and sends the visitor to sign in with GitHub', async () => {
    const page = await browser.context.newPage();
    const authorize: string[] = [];
    await page.route('https://github.com/**', (route) => {
      authorize.push(route.request().url());
      return route.fulfill({ status: 200, contentType: 'text/html', body: 'GitHub, played' });
    });
    await page.goto(`${service.url}/v2/gh/secret/demo/main`);
    const failure = page.locator('#failure-message');
    await failure.waitFor({ state: 'visible', timeout: 30_000 });
    expect(await failure.textContent()).toContain(
      'GitHub has no repository secret/demo with a branch, tag or commit "main" (or the repository is private).',
    );
    const signIn = page.locator('#sign-in');
    expect(await signIn.isVisible()).toBe(true);
    expect(await signIn.getAttribute('href')).toBe(
      `/sign-in?next=${encodeURIComponent('/v2/gh/secret/demo/main')}`,
    );
    await signIn.click();
    await page.waitForURL(/^https:\/\/github\.com\/login\/oauth\/authorize\?/);
    const asked = new URL(authorize[0]!);
    expect(asked.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(asked.searchParams.get('redirect_uri')).toBe(`${service.url}/sign-in/callback`);
    expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
    await page.close();
  });
});
