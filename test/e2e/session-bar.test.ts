import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { extract } from 'tar-stream';
import {
  startSessionBarHarness,
  type BarProxy,
  type SessionBarHarness,
} from '../helpers/session-bar-harness.js';
import { launchChromium, type Chromium } from './launch-chromium.js';

/**
 * The session bar in Chromium, as a visitor uses it: opened from inside a running JupyterLab
 * (Jupyter's own cookie, no token in the address), Download my work saved by the browser, the
 * cap's sentence, a Share link opened by a second browser, the bar refused to that browser
 * before it had the link, and Stop. Screenshots go to test-artifacts/.
 */
const exec = promisify(execFile);
const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts');

let harness: SessionBarHarness;
let proxy: BarProxy;
let browser: Chromium;
let second: Chromium | undefined;
let name: string;
let token: string;
let bar: string;

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  harness = await startSessionBarHarness('e');
  proxy = await harness.proxy();
  ({ name, token } = harness.record);
  bar = `${proxy.url}/user/${name}/_bindery/`;
  browser = await launchChromium();
}, 600_000);

afterAll(async () => {
  await second?.close();
  await browser?.close();
  await harness?.close();
}, 120_000);

/** Names of a .tar.gz's entries, with the content of its files. */
async function unpack(archive: Buffer): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.set(entry.header.name, Buffer.concat(chunks).toString('utf8'));
    }
  })();
  reader.end(gunzipSync(archive));
  await done;
  return entries;
}

/** Waits for JupyterLab's main area: the session's own UI has loaded and signed the visitor in. */
const labLoaded = (page: Page) =>
  page.locator('#jp-main-dock-panel').waitFor({ state: 'attached', timeout: 120_000 });

const shot = (page: Page, file: string) =>
  page.screenshot({ path: join(ARTIFACTS, file), fullPage: true });

let page: Page;
const written = `written through Jupyter's API at ${new Date().toISOString()}\n`;

test('from inside JupyterLab, Download my work holds what was written and none of the caches', async () => {
  page = await browser.context.newPage();
  await page.goto(`${proxy.url}/user/${name}/lab?token=${token}`);
  await labLoaded(page);

  const api = `${proxy.url}/user/${name}/api/contents`;
  const headers = { authorization: `token ${token}`, 'content-type': 'application/json' };
  const put = (path: string, body: object) =>
    fetch(`${api}/${path}`, { method: 'PUT', headers, body: JSON.stringify(body) });
  expect((await put('results', { type: 'directory' })).status).toBe(201);
  const saved = await put('results/run.txt', { type: 'file', format: 'text', content: written });
  expect(saved.status).toBe(201);
  await harness.shell(
    'cd ~ && mkdir -p .cache/pip results/__pycache__ results/.ipynb_checkpoints && ' +
      'echo x > .cache/pip/blob && echo x > results/__pycache__/r.pyc && ' +
      'echo x > results/.ipynb_checkpoints/run-checkpoint.txt',
  );

  // No token in the address: Jupyter's sign-in cookie from the lab above is what opens it.
  const answer = await page.goto(bar);
  expect(answer?.status()).toBe(200);
  expect(await page.locator('h1').textContent()).toBe('Your session');
  expect(await page.locator('#time-left').textContent()).toMatch(/^(9|10) min/);
  await shot(page, 'session-bar.png');
  // On a phone: one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(
    390,
  );
  await shot(page, 'session-bar-phone.png');
  await page.setViewportSize({ width: 1100, height: 800 });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#download-link').click(),
  ]);
  expect(download.suggestedFilename()).toBe(`${name}-work.tar.gz`);
  const saveAs = join(ARTIFACTS, 'session-bar-work.tar.gz');
  await download.saveAs(saveAs);
  const entries = await unpack(await readFile(saveAs));
  expect(entries.get(`${name}-work/results/run.txt`)).toBe(written);
  const names = [...entries.keys()];
  for (const left of [
    '/.cache',
    '/__pycache__',
    '/.ipynb_checkpoints',
    '/.local/share/jupyter/runtime',
  ]) {
    expect(names.filter((entry) => entry.includes(left))).toEqual([]);
  }
}, 180_000);

test('past the cap, the button shows the sentence instead of a download', async () => {
  await harness.shell('head -c 131072 /dev/urandom > ~/results/big.bin');
  const capped = await harness.proxy({ downloadMaxBytes: 64 * 1024 });
  const cappedPage = await browser.context.newPage();
  await cappedPage.goto(`${capped.url}/user/${name}/_bindery/?token=${token}`);
  // The token was traded for the bar's cookie and is gone from the address.
  expect(cappedPage.url()).toBe(`${capped.url}/user/${name}/_bindery/`);
  await cappedPage.locator('#download-link').click();
  await cappedPage.locator('h1', { hasText: 'Too much to download' }).waitFor();
  expect(await cappedPage.locator('section p').first().textContent()).toContain(
    'Your home directory holds more than 64 KiB (caches left out), the most this service sends as one download.',
  );
  await shot(cappedPage, 'session-bar-too-large.png');
  await harness.shell('rm ~/results/big.bin');
}, 60_000);

test('another browser is refused the bar, then opens the session with the Share link', async () => {
  second = await launchChromium();
  const stranger = await second.context.newPage();
  const refused = await stranger.goto(bar);
  expect(refused?.status()).toBe(403);
  const text = (await stranger.locator('body').textContent()) ?? '';
  expect(text).toContain('Not your session');
  expect(text).not.toContain(name);
  await shot(stranger, 'session-bar-refused.png');

  const link = await page.locator('#share-link').inputValue();
  expect(link).toBe(`${proxy.url}/user/${name}/?token=${token}`);
  await stranger.goto(link);
  await labLoaded(stranger);
  // The collaborator sees the visitor's work in the file browser.
  await stranger
    .locator('.jp-DirListing-itemText', { hasText: 'results' })
    .waitFor({ timeout: 60_000 });
  await shot(stranger, 'session-bar-shared.png');
}, 180_000);

test('Stop removes the container and the route', async () => {
  await page.goto(bar);
  await page.locator('#stop-button').click();
  await page.locator('h1', { hasText: 'Session stopped' }).waitFor();
  await shot(page, 'session-bar-stopped.png');
  await expect(exec('docker', ['inspect', harness.record.containerId])).rejects.toThrow();
  expect(await harness.routes.get(name)).toBeUndefined();
  expect(await harness.store.get(name)).toBeUndefined();
  const after = await page.goto(`${proxy.url}/user/${name}/lab`);
  expect(after?.status()).toBe(404);
}, 60_000);
