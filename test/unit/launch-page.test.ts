import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { renderLaunchPage, urlpathFrom } from '../../src/web/launch-page.js';
import { pageAssetsDir } from '../../src/web/page-assets-route.js';

describe('urlpathFrom: the path opened in the session, as BinderHub’s client computes it', () => {
  it('is empty without a parameter, so the server opens its default UI', () => {
    expect(urlpathFrom({})).toBe('');
    expect(urlpathFrom({ urlpath: '' })).toBe('');
  });

  it('takes urlpath as given, without its leading slashes', () => {
    expect(urlpathFrom({ urlpath: 'lab/tree/index.ipynb' })).toBe('lab/tree/index.ipynb');
    expect(urlpathFrom({ urlpath: '/lab/tree/index.ipynb' })).toBe('lab/tree/index.ipynb');
    expect(urlpathFrom({ urlpath: '///tree' })).toBe('tree');
    expect(urlpathFrom({ urlpath: 'lab/tree/a.ipynb?x=1#cell' })).toBe('lab/tree/a.ipynb?x=1#cell');
  });

  it('maps labpath=X to doc/tree/X, encodeURI-ed, with one trailing slash trimmed', () => {
    expect(urlpathFrom({ labpath: 'index.ipynb' })).toBe('doc/tree/index.ipynb');
    expect(urlpathFrom({ labpath: 'notebooks/my analysis.ipynb' })).toBe(
      'doc/tree/notebooks/my%20analysis.ipynb',
    );
    expect(urlpathFrom({ labpath: 'notebooks/' })).toBe('doc/tree/notebooks');
    expect(urlpathFrom({ labpath: 'notebooks//' })).toBe('doc/tree/notebooks/');
    expect(urlpathFrom({ labpath: 'données/é.ipynb' })).toBe('doc/tree/donn%C3%A9es/%C3%A9.ipynb');
    // Present but empty still counts, as URLSearchParams.has does.
    expect(urlpathFrom({ labpath: '' })).toBe('doc/tree/');
  });

  it('maps filepath=X to tree/X, encodeURI-ed, with one trailing slash trimmed', () => {
    expect(urlpathFrom({ filepath: 'index.ipynb' })).toBe('tree/index.ipynb');
    expect(urlpathFrom({ filepath: 'a dir/' })).toBe('tree/a%20dir');
  });

  it('lets labpath win over filepath, and either over urlpath', () => {
    expect(urlpathFrom({ urlpath: 'lab', labpath: 'a.ipynb', filepath: 'b.ipynb' })).toBe(
      'doc/tree/a.ipynb',
    );
    expect(urlpathFrom({ urlpath: 'lab', filepath: 'b.ipynb' })).toBe('tree/b.ipynb');
  });

  it('reads the first of repeated parameters, as URLSearchParams.get does, and ignores others', () => {
    expect(urlpathFrom({ urlpath: ['lab', 'tree'] })).toBe('lab');
    expect(urlpathFrom({ labpath: ['a.ipynb', 'b.ipynb'] })).toBe('doc/tree/a.ipynb');
    expect(urlpathFrom({ urlpath: { nested: 'x' } })).toBe('');
  });
});

/** launch.js's helpers, run as the browser runs the file (they touch no page). */
const script = runScript();
function runScript() {
  const context: Record<string, unknown> = { URL };
  runInNewContext(readFileSync(join(pageAssetsDir(), 'launch.js'), 'utf8'), context);
  return context as {
    sessionUrl(server: string, urlpath: string, token: string, page: string): URL;
    compareIds(a: string, b: string): number;
    ansiSegments(text: string): { text: string; classes: string[] }[];
  };
}
const PAGE = 'http://bindery.test/v2/gh/o/r/HEAD';
const open = (server: string, urlpath: string) =>
  script.sessionUrl(server, urlpath, 'abc123', PAGE).href;

describe('the launch page', () => {
  const repo = { provider: 'gh', repoLabel: 'gh/o/r', ref: 'HEAD' } as const;

  it('follows the build of its own spec and names the repository as a person writes it', () => {
    const html = renderLaunchPage({ provider: 'gh', spec: 'o/r/HEAD', repo, urlpath: 'lab' });
    expect(html).toMatch(/data-build-url="\/build\/gh\/o\/r\/HEAD"/);
    expect(html).toMatch(/data-urlpath="lab"/);
    expect(html).toMatch(/<span id="repo-name" class="name">o\/r<\/span>/);
  });

  it('has no inline script: everything comes from launch.js', () => {
    const html = renderLaunchPage({ provider: 'gh', spec: 'o/r/HEAD', repo, urlpath: '' });
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="/static/launch.js" defer>']);
  });

  it('escapes a repository, ref and urlpath with HTML in them', () => {
    const html = renderLaunchPage({
      provider: 'gl',
      spec: 'x/y',
      repo: { provider: 'gl', repoLabel: 'gl/<img src=x>/p', ref: '<b>"r"</b>' },
      urlpath: '"><script>alert(1)</script>',
    });
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&#60;img src=x&#62;/p');
  });
});

describe('the launch page’s script', () => {
  const server = 'http://bindery.test/user/bindery-0123456789ab/';

  it('opens the server URL with the token when there is no urlpath', () => {
    expect(open(server, '')).toBe(`${server}?token=abc123`);
  });

  it('resolves urlpath against the server URL, then appends the token', () => {
    expect(open(server, 'lab/tree/index.ipynb')).toBe(`${server}lab/tree/index.ipynb?token=abc123`);
    expect(open(server, 'doc/tree/my%20notes.ipynb')).toBe(
      `${server}doc/tree/my%20notes.ipynb?token=abc123`,
    );
  });

  it('keeps a query and a fragment that urlpath carries', () => {
    expect(open(server, 'lab/tree/a.ipynb?x=1')).toBe(`${server}lab/tree/a.ipynb?x=1&token=abc123`);
    expect(open(server, 'lab/tree/a.ipynb?x=1#section-2')).toBe(
      `${server}lab/tree/a.ipynb?x=1&token=abc123#section-2`,
    );
  });

  it('resolves a server URL given relative to the page', () => {
    expect(open('/user/bindery-0123456789ab/', 'tree')).toBe(`${server}tree?token=abc123`);
  });

  it('opens the session’s default page when urlpath would take the token out of it', () => {
    for (const escape of [
      '../bindery-ffffffffffff/',
      'tree/../../../v2/gh/o/r/HEAD',
      '%2e%2e/other/',
      'https://elsewhere.test/steal',
      '\\\\elsewhere.test/steal',
      'javascript:alert(1)//',
    ]) {
      expect([escape, open(server, escape)]).toEqual([escape, `${server}?token=abc123`]);
    }
  });

  it('orders build log event ids as Redis orders stream entries', () => {
    expect(script.compareIds('1700000000000-0', '1700000000000-1')).toBeLessThan(0);
    expect(script.compareIds('1700000000001-0', '1700000000000-9')).toBeGreaterThan(0);
    expect(script.compareIds('999-10', '999-9')).toBeGreaterThan(0);
    expect(script.compareIds('5-5', '5-5')).toBe(0);
  });

  it('renders colours as classes and drops every other terminal escape', () => {
    const plain = (text: string) =>
      JSON.parse(JSON.stringify(script.ansiSegments(text))) as {
        text: string;
        classes: string[];
      }[];
    expect(plain('\x1b[1;31mError\x1b[0m: no\n')).toEqual([
      { text: 'Error', classes: ['ansi-bold', 'ansi-red'] },
      { text: ': no\n', classes: [] },
    ]);
    expect(
      plain('\x1b[2K\x1b[?25lCollecting \x1b]8;;https://pypi.org/\x07numpy\x1b]8;;\x07 done\r\n')
        .map((segment) => segment.text)
        .join(''),
    ).toBe('Collecting numpy done\n');
  });
});
