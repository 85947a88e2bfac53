import { describe, expect, test } from '@jest/globals';
import type { BuildEvent } from '../../src/build-event.js';
import {
  buildStateOf,
  isImageName,
  renderBuildLogNotice,
  renderBuildLogPage,
} from '../../src/web/build-log-page.js';
import { formatDuration } from '../../src/format-duration.js';

const IMAGE = `bindery/r2d-gh-owner-2drepo-1a2b3c:${'a'.repeat(40)}`;
const STARTED = Date.UTC(2025, 0, 2, 3, 4, 5);
const LIVE = '<script src="/static/log.js" defer></script>';

const waiting: BuildEvent = { phase: 'waiting', message: 'Waiting for build to start...\n' };
const fetching: BuildEvent = { phase: 'fetching', message: 'Fetching repository...\n' };
const step: BuildEvent = { phase: 'building', message: 'Step 1/9 : FROM base\n' };
const built: BuildEvent = { phase: 'built', message: 'Built image\n', imageName: IMAGE };
const failed: BuildEvent = { phase: 'failed', message: 'postBuild exited with 1\n' };

/** The page without the layout's whitespace between tags. */
const flat = (html: string) => html.replace(/>\s+</g, '><');

/** The text inside the page's <pre>. */
const preOf = (html: string) => /<pre id="log">([\s\S]*)<\/pre>/.exec(html)?.[1];

describe('build state from the log', () => {
  test.each([
    ['only waiting', [waiting], 'waiting'],
    ['fetching', [waiting, fetching], 'building'],
    ['building', [waiting, fetching, step], 'building'],
    ['ended in built', [waiting, fetching, step, built], 'built'],
    ['ended in failed', [waiting, fetching, step, failed], 'failed'],
    // A build that starts again after its worker died writes `waiting` once more.
    ['started again', [waiting, fetching, step, waiting], 'waiting'],
  ] as [string, BuildEvent[], string][])('a log %s is %s', (_name, events, state) => {
    expect(buildStateOf(events)).toBe(state);
  });
});

describe('the build log page', () => {
  test('a built image: its name, state, times, duration and every log line, and no refresh', () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [waiting, fetching, step, built],
      details: { private: false, startedAt: STARTED, finishedAt: STARTED + 83_000 },
      now: STARTED + 600_000,
    });
    expect(html).toContain(`<div class="image">${IMAGE}</div>`);
    expect(html).toContain('<span id="state" class="state built">built</span>');
    expect(flat(html)).toContain('<dt>Started</dt><dd>2025-01-02 03:04:05 UTC</dd>');
    expect(flat(html)).toContain('<dt>Finished</dt><dd>2025-01-02 03:05:28 UTC</dd>');
    expect(flat(html)).toContain('<dt>Duration</dt><dd>1 min 23 s</dd>');
    expect(preOf(html)).toBe(
      'Waiting for build to start...\nFetching repository...\nStep 1/9 : FROM base\nBuilt image\n',
    );
    expect(html).not.toContain(LIVE);
    expect(html).not.toContain('follows the build');
  });

  test("the duration comes with the final event, before the queue has recorded the job's end", () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [waiting, fetching, step, { ...built, durationMs: 83_000 }],
      details: { private: false, startedAt: STARTED },
      now: STARTED + 600_000,
    });
    expect(flat(html)).toContain('<dt>Duration</dt><dd>1 min 23 s</dd>');
    expect(flat(html)).not.toContain('<dt>Finished</dt>');
  });

  test('a failed build says so, keeps the log, and follows nothing', () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [waiting, fetching, failed],
      details: { private: false, startedAt: STARTED, finishedAt: STARTED + 4_000 },
      now: STARTED + 5_000,
    });
    expect(html).toContain('<span id="state" class="state failed">failed</span>');
    expect(preOf(html)).toContain('postBuild exited with 1\n');
    expect(html).toContain('<dd>4 s</dd>');
    expect(html).not.toContain(LIVE);
  });

  test('a running build follows itself live, says so, and shows how long it has run', () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [waiting, fetching, step],
      // A finish time from a try that was retried is not the build's end.
      details: { private: false, startedAt: STARTED, finishedAt: STARTED + 1_000 },
      now: STARTED + 3_725_000,
    });
    expect(html).toContain('<span id="state" class="state building">building</span>');
    expect(html).toContain(LIVE);
    expect(html).toContain('This page follows the build as it runs.');
    expect(flat(html)).toContain('<dt>Running for</dt><dd>1 h 2 min</dd>');
    expect(html).not.toContain('Finished');
  });

  test('a waiting build has no times yet and follows itself', () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [waiting],
      details: { private: false },
      now: STARTED,
    });
    expect(html).toContain('<span id="state" class="state waiting">waiting</span>');
    expect(html).toContain(LIVE);
    expect(html).not.toContain('<dl>');
  });

  test('log lines are HTML-escaped and lose their terminal colours', () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [
        waiting,
        { phase: 'building', message: '\x1b[31m<script>alert("x")</script> & \'quotes\'\x1b[0m' },
        { phase: 'building', message: '</pre><img src=x onerror=alert(1)>\n' },
      ],
      details: { private: false, startedAt: STARTED },
      now: STARTED,
    });
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('\x1b');
    expect(preOf(html)).toBe(
      'Waiting for build to start...\n' +
        '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quotes&#39;\n' +
        '&#60;/pre&#62;&#60;img src=x onerror=alert(1)&#62;\n',
    );
  });

  test('cursor moves and hyperlinks in a log (pip, apt) leave no escape codes on the page', () => {
    const html = renderBuildLogPage({
      imageName: IMAGE,
      events: [
        waiting,
        {
          phase: 'building',
          message:
            '\x1b[2K\x1b[?25lCollecting \x1b]8;;https://pypi.org/project/numpy/\x07numpy\x1b]8;;\x07 \x1b[1A\x1b[32mdone\x1b[0m\n',
        },
      ],
      details: { private: false, startedAt: STARTED },
      now: STARTED,
    });
    expect(html).not.toContain('\x1b');
    expect(html).not.toContain('\x07');
    expect(preOf(html)).toBe('Waiting for build to start...\nCollecting numpy done\n');
  });

  test('a notice page escapes its sentence', () => {
    const html = renderBuildLogNotice('No build log', 'No build log for <b>x</b>.');
    expect(html).toContain('<h1>No build log</h1>');
    expect(html).toContain('No build log for &#60;b&#62;x&#60;/b&#62;.');
  });
});

describe('image names and durations', () => {
  test.each([
    [IMAGE, true],
    [`bindery-test/q1-1:${'0'.repeat(40)}`, true],
    ['registry.example.org/bindery/r2d-x:v1.0_rc-2', true],
    // Under BINDERY_REGISTRY with a port.
    [`127.0.0.1:5000/bindery/r2d-x:${'0'.repeat(40)}`, true],
    ['registry.internal:5000/bindery/r2d-x:tag/../../etc', false],
    ['registry.internal:http/bindery/r2d-x:tag', false],
    ['bindery/r2d-x', false],
    ['Bindery/r2d-x:tag', false],
    ['bindery/r2d x:tag', false],
    ['bindery/r2d-x:', false],
    [`bindery/r2d-x:${'a'.repeat(129)}`, false],
    ['bindery/r2d-x:tag/../../etc', false],
    ['<script>:tag', false],
  ])('%s is an image name: %s', (name, valid) => {
    expect(isImageName(name)).toBe(valid);
  });

  test.each([
    [0, '0 s'],
    [42_400, '42 s'],
    [185_000, '3 min 5 s'],
    [3_725_000, '1 h 2 min'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
