import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import {
  rawRequest,
  startSessionBarHarness,
  type BarProxy,
  type SessionBarHarness,
} from '../helpers/session-bar-harness.js';

/**
 * The session bar, `/user/<session>/_bindery/`, answered by the proxy in front of a real
 * session of the default fixture: who may open it, Download my work from the real container,
 * its cap, Share, the time left and Stop, on the session's path and on a host of its own.
 */
const exec = promisify(execFile);

let harness: SessionBarHarness;
let proxy: BarProxy;
let name: string;
let token: string;
let bar: string;

beforeAll(async () => {
  harness = await startSessionBarHarness('b');
  proxy = await harness.proxy();
  ({ name, token } = harness.record);
  bar = `${proxy.url}/user/${name}/_bindery/`;
}, 600_000);

afterAll(async () => {
  await harness?.close();
}, 120_000);

/** The entries of a .tar.gz, name → content; `types` gets each entry's type. */
async function unpack(archive: Buffer, types = new Map<string, string>()) {
  const entries = new Map<string, Buffer>();
  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.set(entry.header.name, Buffer.concat(chunks));
      types.set(entry.header.name, `${entry.header.type} ${entry.header.linkname ?? ''}`.trim());
    }
  })();
  reader.end(gunzipSync(archive));
  await done;
  return entries;
}

const running = async (id: string) =>
  exec('docker', ['inspect', '--format', '{{.State.Running}}', id]).then(
    ({ stdout }) => stdout.trim() === 'true',
    () => false,
  );

describe('who may open the bar', () => {
  test('a visitor without the token gets 403 and learns nothing of the session', async () => {
    const anonymous = await fetch(bar);
    const text = await anonymous.text();
    expect(anonymous.status).toBe(403);
    expect(text).toContain('Not your session');
    expect(text).not.toContain(name);
    expect(text).not.toContain(token);
    expect(text).not.toContain('local/default');
    // A session that does not exist is refused with the very same page.
    const missing = await fetch(`${proxy.url}/user/bindery-000000000000/_bindery/`);
    expect(missing.status).toBe(403);
    const withoutNonce = (page: string) => page.replace(/nonce[-=]"?[A-Za-z0-9+/=]+/g, '');
    expect(withoutNonce(await missing.text())).toBe(withoutNonce(text));
    for (const path of ['download', 'stop']) {
      const refused = await fetch(`${bar}${path}`, { method: path === 'stop' ? 'POST' : 'GET' });
      expect(refused.status).toBe(403);
    }
    expect(await running(harness.record.containerId)).toBe(true);
  });

  test('a wrong token, a forged bar cookie or a forged Jupyter cookie is refused', async () => {
    const wrong = await fetch(bar, { headers: { authorization: `token ${token.slice(1)}x` } });
    expect(wrong.status).toBe(403);
    expect((await fetch(`${bar}?token=nope`, { redirect: 'manual' })).status).toBe(403);
    const forged = await fetch(bar, { headers: { cookie: `bindery-bar=${'0'.repeat(64)}` } });
    expect(forged.status).toBe(403);
    const jupyter = `username-127-0-0-1-${proxy.port}="2|1:0|10:1|forged"`;
    expect((await fetch(bar, { headers: { cookie: jupyter } })).status).toBe(403);
  });

  test('the token in Authorization opens the bar, framed by nobody and cached by nobody', async () => {
    const answer = await fetch(bar, { headers: { authorization: `token ${token}` } });
    const page = await answer.text();
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(answer.headers.get('x-frame-options')).toBe('DENY');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page).toContain('Download my work');
    expect(page).toContain(`value="${proxy.url}/user/${name}/?token=${token}"`);
    expect(page).toContain('Anyone holding this link has full access to this session');
    // Idle timeout 600 s from a session just started and used: about 10 minutes left.
    const ms = Number(/data-ms="(\d+)"/.exec(page)?.[1]);
    expect(ms).toBeGreaterThan(8 * 60_000);
    expect(ms).toBeLessThanOrEqual(600_000);
    expect(page).toMatch(/This session stops in\s*<span[^>]*>(9 min( \d+ s)?|10 min)<\/span/);
  });

  test('?token= is traded for a cookie of the bar alone, and dropped from the address', async () => {
    const answer = await fetch(`${bar}?token=${token}`, { redirect: 'manual' });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe(`/user/${name}/_bindery/`);
    const cookie = answer.headers.get('set-cookie')!;
    expect(cookie).toMatch(
      new RegExp(
        `^bindery-bar=[0-9a-f]{64}; Path=/user/${name}/_bindery/; HttpOnly; SameSite=Lax$`,
      ),
    );
    expect(cookie).not.toContain(token);
    const page = await fetch(bar, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
  });

  test("Jupyter's own sign-in cookie opens it, as from inside the session", async () => {
    const lab = await fetch(`${proxy.url}/user/${name}/lab?token=${token}`, { redirect: 'manual' });
    expect(lab.status).toBe(200);
    const cookies = lab.headers
      .getSetCookie()
      .map((cookie) => cookie.split(';')[0]!)
      .filter((pair) => pair.startsWith('username-'));
    expect(cookies).toHaveLength(1);
    const page = await fetch(bar, { headers: { cookie: cookies[0]! } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Stop this session');
  });
});

describe('Download my work', () => {
  test('holds what the visitor wrote through Jupyter, and none of the caches', async () => {
    const api = `${proxy.url}/user/${name}/api/contents`;
    const auth = { authorization: `token ${token}`, 'content-type': 'application/json' };
    const made = await fetch(`${api}/results`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ type: 'directory' }),
    });
    expect(made.status).toBe(201);
    const text = `measured at ${new Date().toISOString()}\n`;
    const saved = await fetch(`${api}/results/run.txt`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ type: 'file', format: 'text', content: text }),
    });
    expect(saved.status).toBe(201);
    await harness.shell(
      'cd ~ && mkdir -p .cache/pip __pycache__ results/.ipynb_checkpoints results/__pycache__ && ' +
        'head -c 4096 /dev/urandom > .cache/pip/wheel && echo x > __pycache__/m.pyc && ' +
        'echo x > results/.ipynb_checkpoints/run-checkpoint.txt && echo x > results/__pycache__/r.pyc && ' +
        'ln -s /etc/passwd passwd-link',
    );
    // Jupyter keeps its kernels' connection files (their keys) in its runtime directory.
    expect(await harness.shell('ls ~/.local/share/jupyter/runtime')).not.toBe('');

    const started = Date.now();
    const answer = await fetch(`${bar}download`, { headers: { authorization: `token ${token}` } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/gzip');
    expect(answer.headers.get('content-disposition')).toBe(
      `attachment; filename="${name}-work.tar.gz"`,
    );
    const archive = Buffer.from(await answer.arrayBuffer());
    const took = Date.now() - started;
    const types = new Map<string, string>();
    const entries = await unpack(archive, types);
    const names = [...entries.keys()];
    // A link is archived as a link: none of the file it names comes with it.
    expect(types.get(`${name}-work/passwd-link`)).toBe('symlink /etc/passwd');
    expect(entries.get(`${name}-work/passwd-link`)?.length).toBe(0);
    expect(entries.get(`${name}-work/results/run.txt`)?.toString()).toBe(text);
    // The repository's own files are the visitor's work too.
    expect(names).toContain(`${name}-work/verify`);
    expect(names.filter((entry) => !entry.startsWith(`${name}-work/`))).toEqual([]);
    for (const left of [
      '.cache',
      '__pycache__',
      '.ipynb_checkpoints',
      '.local/share/jupyter/runtime',
    ]) {
      expect(names.filter((entry) => entry.includes(`/${left}`))).toEqual([]);
    }
    console.log(
      `session bar download: ${entries.size} entries, ${archive.length} bytes gzip'd in ${took} ms`,
    );
  }, 60_000);

  test('past the cap it refuses with a sentence, and sends nothing', async () => {
    await harness.shell('head -c 307200 /dev/urandom > ~/big.bin');
    const capped = await harness.proxy({ downloadMaxBytes: 256 * 1024 });
    const answer = await fetch(`${capped.url}/user/${name}/_bindery/download`, {
      headers: { authorization: `token ${token}` },
    });
    expect(answer.status).toBe(413);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await answer.text()).toContain(
      'Your home directory holds more than 256 KiB (caches left out), the most this service sends as one download.',
    );
    // Caches do not count against the cap: a large one alone is no refusal.
    await harness.shell('rm ~/big.bin && head -c 307200 /dev/urandom > ~/.cache/big.bin');
    const fits = await fetch(`${capped.url}/user/${name}/_bindery/download`, {
      headers: { authorization: `token ${token}` },
    });
    expect(fits.status).toBe(200);
    expect((await fits.arrayBuffer()).byteLength).toBeLessThan(256 * 1024);
  }, 60_000);
});

test('one download of a session at a time: a second while the first streams is told to wait', async () => {
  await harness.shell('head -c 20971520 /dev/urandom > ~/twenty.bin');
  const auth = { authorization: `token ${token}` };
  const first = await fetch(`${bar}download`, { headers: auth });
  // Its body is not read yet: the stream waits on this client, holding its place.
  expect(first.status).toBe(200);
  const second = await fetch(`${bar}download`, { headers: auth });
  expect(second.status).toBe(429);
  expect(await second.text()).toContain('A download of this session is already under way');
  expect((await first.arrayBuffer()).byteLength).toBeGreaterThan(20 * 2 ** 20);
  const third = await fetch(`${bar}download`, { headers: auth });
  expect(third.status).toBe(200);
  await third.arrayBuffer();
  await harness.shell('rm ~/twenty.bin');
}, 60_000);

describe('sessions on host names of their own', () => {
  test('the bar answers on the session host; the service host only redirects there', async () => {
    const hosted = await harness.proxy({ sessionHost: '{session}.sessions.test' });
    const origin = `http://${name}.sessions.test:${hosted.port}`;
    const onHost = await rawRequest(`${origin}/user/${name}/_bindery/`, {
      headers: { authorization: `token ${token}` },
    });
    expect(onHost.status).toBe(200);
    expect(onHost.body.toString()).toContain(`value="${origin}/user/${name}/?token=${token}"`);
    const anonymous = await rawRequest(`${origin}/user/${name}/_bindery/`);
    expect(anonymous.status).toBe(403);
    expect(anonymous.body.toString()).not.toContain(name);
    const onService = await rawRequest(`${hosted.url}/user/${name}/_bindery/`);
    expect(onService.status).toBe(302);
    expect(onService.headers.location).toBe(`${origin}/user/${name}/_bindery/`);
  });
});

describe('Stop', () => {
  test('a form from elsewhere (cookie, no secret) is refused; the bar stops it like the culler', async () => {
    const traded = await fetch(`${bar}?token=${token}`, { redirect: 'manual' });
    const cookie = traded.headers.get('set-cookie')!.split(';')[0]!;
    const form = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
    const forged = await fetch(`${bar}stop`, { method: 'POST', headers: form, body: 'secret=x' });
    expect(forged.status).toBe(403);
    expect(await running(harness.record.containerId)).toBe(true);

    const page = await (await fetch(bar, { headers: { cookie } })).text();
    const secret = /name="secret" value="([0-9a-f]+)"/.exec(page)![1]!;
    const stopped = await fetch(`${bar}stop`, {
      method: 'POST',
      headers: form,
      body: `secret=${secret}`,
    });
    expect(stopped.status).toBe(200);
    expect(await stopped.text()).toContain('Your session has stopped');
    expect(await running(harness.record.containerId)).toBe(false);
    await expect(exec('docker', ['inspect', harness.record.containerId])).rejects.toThrow();
    expect(await harness.routes.get(name)).toBeUndefined();
    expect(await harness.store.get(name)).toBeUndefined();
    // Gone: the proxy's 404 for the session, and the bar refuses even its old token.
    expect((await fetch(`${proxy.url}/user/${name}/api/status`)).status).toBe(404);
    expect((await fetch(bar, { headers: { authorization: `token ${token}` } })).status).toBe(403);
    expect(harness.logged).toContain(`session bar: ${name}: stopped by its holder`);
  }, 60_000);
});
