import { describe, expect, test } from '@jest/globals';
import { formatBytes } from '../../src/format-bytes.js';
import { sessionBarPath } from '../../src/proxy/session-bar-path.js';
import { isExcluded } from '../../src/sessions/home-archive.js';
import { sessionTimeLeft } from '../../src/sessions/session-time-left.js';
import {
  barCookieValue,
  barFormSecret,
  cookieValue,
  sameSecret,
} from '../../src/web/session-bar-auth.js';

describe('which of the home directory Download my work leaves out', () => {
  test.each([
    '.cache',
    '.cache/pip/http/ab/cd',
    '__pycache__/m.cpython-311.pyc',
    'src/pkg/__pycache__/x.pyc',
    '.ipynb_checkpoints/a-checkpoint.ipynb',
    'notes/.ipynb_checkpoints/b-checkpoint.ipynb',
    '.local/share/jupyter/runtime/kernel-1.json',
    '.npm/_cacache/index',
    '.conda/pkgs/numpy.tar.bz2',
  ])('leaves out %s', (path) => expect(isExcluded(path)).toBe(true));

  test.each([
    '',
    'analysis.ipynb',
    'results/run.txt',
    '.local/share/jupyter/nbextensions/x.js',
    '.local/lib/python3.11/site-packages/mine.py',
    'data/.cached-results.csv',
    'my.cache/notes.txt',
    '.config/matplotlib/matplotlibrc',
  ])('keeps %s', (path) => expect(isExcluded(path)).toBe(false));
});

describe('the time left before the culler stops a session', () => {
  const config = { idleTimeoutSeconds: 600, maxAgeSeconds: 3600 };
  const start = 1_000_000;

  test('a session used a minute ago has nine minutes of idleness left', () => {
    const left = sessionTimeLeft(
      { createdAt: start, lastActivity: [start + 300_000, undefined] },
      config,
      start + 360_000,
    );
    expect(left).toEqual({ idleMs: 540_000, ageMs: 3_240_000, leftMs: 540_000, reason: 'idle' });
  });

  test("the latest activity counts, the proxy's or Jupyter's", () => {
    const left = sessionTimeLeft(
      { createdAt: start, lastActivity: [start + 60_000, start + 900_000] },
      config,
      start + 1_000_000,
    );
    expect(left.idleMs).toBe(500_000);
  });

  test('near its maximum age, the age decides, however busy it is', () => {
    const left = sessionTimeLeft(
      { createdAt: start, lastActivity: [start + 3_400_000] },
      config,
      start + 3_500_000,
    );
    expect(left).toMatchObject({ leftMs: 100_000, reason: 'age' });
  });

  test('never below zero when the culler is late', () => {
    const left = sessionTimeLeft({ createdAt: start, lastActivity: [] }, config, start + 5_000_000);
    expect(left).toMatchObject({ idleMs: 0, ageMs: 0, leftMs: 0 });
  });
});

describe("the bar's path in a session's", () => {
  test.each([
    ['/user/s1/_bindery/', '/'],
    ['/user/s1/_bindery', ''],
    ['/user/s1/_bindery?token=x', '?token=x'],
    ['/user/s1/_bindery/download', '/download'],
  ])('%s is the bar (%s)', (path, rest) => expect(sessionBarPath(path, 's1')).toBe(rest));

  test.each([
    '/user/s1/_binderyx/',
    '/user/s1/lab',
    '/user/s2/_bindery/',
    '/user/s1/tree/_bindery/',
  ])('%s is the session', (path) => expect(sessionBarPath(path, 's1')).toBeUndefined());
});

describe("the bar's secrets", () => {
  test('a Cookie header is read by name, the rest ignored', () => {
    const header = 'a=1; bindery-bar=abc; username-x="2|1:0"';
    expect(cookieValue(header, 'bindery-bar')).toBe('abc');
    expect(cookieValue(header, 'bindery')).toBeUndefined();
    expect(cookieValue(undefined, 'a')).toBeUndefined();
  });

  test('cookie and form secrets come from the token, differ from it and from each other', () => {
    const token = 'f'.repeat(48);
    expect(barCookieValue(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(barCookieValue(token)).not.toBe(barFormSecret(token));
    expect(barCookieValue(token)).not.toBe(barCookieValue('e'.repeat(48)));
    expect(sameSecret(barCookieValue(token), barCookieValue(token))).toBe(true);
    expect(sameSecret(barCookieValue(token), barFormSecret(token))).toBe(false);
    expect(sameSecret('', token)).toBe(false);
  });
});

test.each([
  [512, '512 bytes'],
  [256 * 1024, '256 KiB'],
  [100 * 2 ** 20, '100 MiB'],
  [1.5 * 2 ** 30, '1.5 GiB'],
])('%d bytes read %s', (bytes, text) => expect(formatBytes(bytes)).toBe(text));
