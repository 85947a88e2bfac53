import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { createLog } from '../../src/log/create-log.js';
import { pathForLog } from '../../src/log/access-log.js';
import { captureLog } from '../helpers/capture-log.js';

/** A logger made from `env` as the service makes it, and what it wrote. */
function logFrom(env: Record<string, string>) {
  const written: string[] = [];
  const log = createLog({
    ...loadConfig(env).log,
    destination: { write: (line) => written.push(line) },
  });
  return { log, written };
}

describe('createLog', () => {
  it('writes LOG_LEVEL and above, and nothing below it', () => {
    const { log, written } = logFrom({ LOG_LEVEL: 'warn', LOG_FORMAT: 'json' });
    log.info('routine');
    log.debug('chatty');
    log.warn('refused');
    log.error('broken');
    expect(written.map((line) => JSON.parse(line).msg)).toEqual(['refused', 'broken']);
    expect(logFrom({}).log.level).toBe('info');
    expect(logFrom({ LOG_LEVEL: 'debug' }).log.isLevelEnabled('debug')).toBe(true);
  });

  it('writes one JSON object a line with LOG_FORMAT=json: level, ISO time, component, fields', () => {
    const { log, written } = logFrom({ LOG_FORMAT: 'json' });
    log.child({ component: 'proxy' }).info({ session: 'abc' }, 'route found');
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/\n$/);
    const entry = JSON.parse(written[0]!);
    expect(entry).toMatchObject({
      level: 30,
      component: 'proxy',
      session: 'abc',
      msg: 'route found',
    });
    expect(new Date(entry.time).toISOString()).toBe(entry.time);
  });

  it('writes a line for people with LOG_FORMAT=pretty: time, level, component, message, fields', () => {
    const { log, written } = logFrom({ LOG_FORMAT: 'pretty' });
    log.child({ component: 'sandbox' }).warn({ network: 'bindery-net' }, 'firewall not in place');
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(
      /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: \(sandbox\) firewall not in place \{"network":"bindery-net"\}\n$/,
    );
  });

  it('is pretty by default and JSON when NODE_ENV is production, as Probot', () => {
    const pretty = logFrom({});
    pretty.log.info('hello');
    expect(pretty.written[0]).toMatch(/INFO: hello/);
    const json = logFrom({ NODE_ENV: 'production' });
    json.log.info('hello');
    expect(JSON.parse(json.written[0]!)).toMatchObject({ level: 30, msg: 'hello' });
  });

  it("keeps an error's message and status but not the webhook payload it carries", () => {
    const { log, entries, text } = captureLog();
    const failure = Object.assign(new Error('Not Found'), {
      status: 404,
      event: { payload: { secret_field: 'payload-secret' } },
    });
    log.error(new AggregateError([failure], 'handler failed'));
    log.error({ err: failure }, 'check run not updated');
    const [aggregate, single] = entries();
    expect(aggregate).toMatchObject({
      err: { type: 'AggregateError', message: 'handler failed', errors: ['Not Found'] },
    });
    expect(single).toMatchObject({
      msg: 'check run not updated',
      err: { type: 'Error', message: 'Not Found', status: 404 },
    });
    // An HTTP failure is expected: no stack. A bug is not: its stack is there.
    expect(single!.err).not.toHaveProperty('stack');
    log.error({ err: new TypeError('x is undefined') }, 'bug');
    expect(entries()[2]!.err).toHaveProperty('stack', expect.stringContaining('TypeError'));
    expect(text()).not.toContain('payload-secret');
  });
});

describe('pathForLog', () => {
  it('leaves out query parameters that may hold a credential, keeps the rest', () => {
    expect(pathForLog('/user/abc/lab?token=SECRET')).toBe('/user/abc/lab');
    expect(pathForLog('/user/abc/api/kernels?_xsrf=SECRET&x=1&access_token=SECRET')).toBe(
      '/user/abc/api/kernels?x=1',
    );
    expect(pathForLog('/oauth/callback?code=SECRET&state=SECRET')).toBe('/oauth/callback');
    expect(pathForLog('/user/abc/lab?bindery_share=SECRET&reset')).toBe('/user/abc/lab?reset=');
    expect(pathForLog('/v2/gh/o/r/HEAD?urlpath=lab')).toBe('/v2/gh/o/r/HEAD?urlpath=lab');
  });

  it('leaves out credentials in a git URL, escaped or not', () => {
    expect(
      pathForLog('/build/git/https%3A%2F%2Fuser%3ASECRET%40git.example.org%2Fr.git/HEAD'),
    ).toBe('/build/git/https%3A%2F%2Fgit.example.org%2Fr.git/HEAD');
    expect(pathForLog('/v2/git/https://user:SECRET@git.example.org/r.git/HEAD')).toBe(
      '/v2/git/https://git.example.org/r.git/HEAD',
    );
    expect(pathForLog('/v2/gh/o/r/HEAD')).toBe('/v2/gh/o/r/HEAD');
  });

  it('cuts a very long path', () => {
    expect(pathForLog(`/${'a'.repeat(5000)}`)).toHaveLength(501);
  });
});
