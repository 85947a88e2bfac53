import { describe, expect, it } from '@jest/globals';
import { finishedOutput, GITHUB_OUTPUT_LIMIT, logTail } from '../../src/github/check-run-output.js';
import { createProbotLog } from '../../src/github/probot-log.js';
import { captureLog } from '../helpers/capture-log.js';
import { parseMarker, renderComment } from '../../src/github/pull-request-comment.js';

const SHA = 'c'.repeat(40);

describe('check run output', () => {
  it("keeps the log's tail under GitHub's limit, whole lines only", () => {
    const events = Array.from({ length: 5000 }, (_, i) => ({
      phase: 'building' as const,
      message: `line ${i} ${'x'.repeat(40)}\n`,
    }));
    const text = logTail(events);
    expect(text.length).toBeLessThan(GITHUB_OUTPUT_LIMIT);
    expect(text).toContain('line 4999');
    expect(text).not.toContain('line 0 ');
    expect(text).toMatch(/earlier lines are cut/);
    expect(text).toMatch(/\n```text\nline \d+ x+\n/);
  });

  it('fences the log so that backticks in it cannot end the fence', () => {
    const text = logTail([{ phase: 'building', message: 'echo ````\n' }]);
    expect(text.startsWith('`````text\n')).toBe(true);
    expect(text.endsWith('\n`````\n')).toBe(true);
  });

  it('says cached, built or failed, with the time and the image', () => {
    const image = 'bindery/r2d-x:1';
    expect(
      finishedOutput({ imageName: image, events: [{ phase: 'built', message: 'ok' }] }).title,
    ).toBe('Image already built');
    const built = finishedOutput({
      imageName: image,
      durationMs: 65_000,
      events: [
        { phase: 'fetching', message: 'Fetching' },
        { phase: 'built', message: 'ok' },
      ],
    });
    expect(built.title).toBe('Built in 1 min 5 s');
    expect(built.summary).toContain(image);
    const failed = finishedOutput({
      imageName: image,
      events: [{ phase: 'failed', message: 'postBuild failed.\n' }],
    });
    expect(failed).toMatchObject({
      title: 'Build failed',
      summary: expect.stringContaining('postBuild failed.'),
    });
  });
});

describe('the pull request comment', () => {
  it('holds the launch badge pinned to the head commit, the branch link and the state', () => {
    const text = renderComment({
      publicUrl: 'https://bindery.test',
      githubUrl: 'https://github.com',
      owner: 'o',
      repo: 'r',
      sha: SHA,
      state: 'building',
      branch: { name: 'feature/x', repo: 'fork/r' },
      logUrl: 'https://bindery.test/logs/i:1',
      private: false,
    });
    expect(text).toContain(
      `[![Launch on Bindery](https://bindery.test/badge_logo.svg)](https://bindery.test/v2/gh/o/r/${SHA})`,
    );
    expect(text).toContain('https://bindery.test/v2/gh/fork/r/feature%2Fx');
    expect(text).toContain('⏳ building ([build log](https://bindery.test/logs/i:1))');
  });

  it('reads back the head and time of its marker', () => {
    expect(
      parseMarker(`<!-- bindery:launch-badge head=${SHA} updated=2026-01-01T00:00:00Z -->\nhi`),
    ).toEqual({
      head: SHA,
      updated: '2026-01-01T00:00:00Z',
    });
    expect(parseMarker('<!-- something else -->')).toBeUndefined();
  });
});

describe("the app's log", () => {
  it('writes one short line for an error or an event that carries a whole payload', () => {
    const { log, entries, text } = captureLog('debug');
    const probotLog = createProbotLog(log.child({ component: 'github' }));
    const payload = { action: 'opened', body: 'x'.repeat(100_000) };
    const error = Object.assign(new Error('signature does not match event payload and secret'), {
      event: { id: 'delivery-1', name: 'pull_request', payload },
    });
    probotLog.child({ name: 'probot' }).error(error, 'Go to the app settings');
    probotLog.debug({ event: { id: 'delivery-2', name: 'push', payload } }, 'Webhook received');
    expect(entries()).toMatchObject([
      {
        level: 50,
        component: 'github',
        name: 'probot',
        msg: 'Go to the app settings',
        err: { message: 'signature does not match event payload and secret' },
      },
      { level: 20, event: { id: 'delivery-2', name: 'push', action: 'opened' } },
    ]);
    // The payload is 100 kB; each line (an error's stack included) is a small part of that.
    for (const line of text().trim().split('\n')) expect(line.length).toBeLessThan(10_000);
    expect(text()).not.toContain('xxxxxxxx');
  });
});
