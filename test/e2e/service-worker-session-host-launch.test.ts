import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { launchChromium, type Chromium } from './launch-chromium.js';

/**
 * BINDERY_SESSION_HOST end to end: the real service builds a repository, the launch page in
 * Chromium follows /build, and the `ready` url takes the browser to the session's own host
 * name, where JupyterLab loads and a kernel runs code over a WebSocket that Jupyter accepts
 * with the browser's cookie (so its Origin check passes on the session host).
 */

const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');

let git: GitServer;
let repo: { url: string; sha: string };
let service: TestService;
let publicUrl: string;
let port: number;
let browser: Chromium;

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.publish('demo', FIXTURE);
  service = await startTestService('swh', { BINDERY_SESSION_HOST: '{session}.sessions.test' });
  publicUrl = service.url;
  port = Number(new URL(publicUrl).port);
  browser = await launchChromium(['--host-resolver-rules=MAP *.sessions.test 127.0.0.1']);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await service?.remove();
  await git?.close();
}, 120_000);

/**
 * In the session's page: starts a kernel as JupyterLab does (cookie and XSRF token, no token in
 * the URL), runs `print(6*7)` over the channels WebSocket and resolves with its output.
 */
const RUN_IN_KERNEL = `(async () => {
  const base = location.pathname.match(/^\\/user\\/[^/]+\\//)[0];
  const xsrf = document.cookie.split('; ').find((c) => c.startsWith('_xsrf='));
  const created = await fetch(base + 'api/kernels', {
    method: 'POST',
    headers: { 'X-XSRFToken': decodeURIComponent(xsrf.slice(6)), 'Content-Type': 'application/json' },
    body: '{}',
  });
  if (created.status !== 201) return 'POST api/kernels answered ' + created.status;
  const { id } = await created.json();
  const msgId = 'm' + Math.random().toString(16).slice(2);
  return new Promise((resolve) => {
    const socket = new WebSocket('ws://' + location.host + base + 'api/kernels/' + id + '/channels');
    socket.onopen = () => socket.send(JSON.stringify({
      header: { msg_id: msgId, session: 's' + msgId, username: '', date: new Date().toISOString(),
        msg_type: 'execute_request', version: '5.3' },
      parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
      content: { code: 'print(6*7)', silent: false, store_history: false, user_expressions: {},
        allow_stdin: false, stop_on_error: true },
    }));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.parent_header.msg_id === msgId && message.header.msg_type === 'stream') {
        resolve(message.content.text);
        socket.close();
      }
    };
    socket.onerror = () => resolve('the WebSocket failed');
  });
})()`;

describe('a launch with BINDERY_SESSION_HOST, in Chromium', () => {
  test('opens JupyterLab on the session host, where its kernel WebSocket works', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${publicUrl}/v2/git/${encodeURIComponent(repo.url)}/HEAD`);
    await page.waitForURL((url) => url.hostname.endsWith('.sessions.test'), { timeout: 280_000 });
    const landed = new URL(page.url());
    const session = landed.hostname.slice(0, -'.sessions.test'.length);
    expect(session).toMatch(/^bindery-[0-9a-f]{12}$/);
    expect(landed.origin).toBe(`http://${session}.sessions.test:${port}`);
    expect(landed.pathname.startsWith(`/user/${session}/`)).toBe(true);
    await page.waitForLoadState('load');
    expect(await page.title()).toBe('JupyterLab');

    // What the page did meanwhile, to say why if the code does not run (once, with three jest
    // workers, its fetch failed at the network level; not seen again in targeted runs).
    const meanwhile: string[] = [];
    page.on('requestfailed', (request) =>
      meanwhile.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`),
    );
    page.on('framenavigated', (frame) => meanwhile.push(`navigated to ${frame.url()}`));
    const output = await page
      .evaluate(RUN_IN_KERNEL)
      .catch((error: Error) => `${error.message}; meanwhile: ${meanwhile.join('; ') || 'nothing'}`);
    expect(output).toBe('42\n');

    // The service's host only points there.
    const redirected = await fetch(`${publicUrl}/user/${session}/lab`, { redirect: 'manual' });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get('location')).toBe(`${landed.origin}/user/${session}/lab`);
    // The session's cookies live on its host alone.
    expect(await browser.context.cookies(`${publicUrl}/user/${session}/`)).toEqual([]);
    await page.close();
  }, 300_000);
});
