import { describe, expect, it } from '@jest/globals';
import { runInNewContext } from 'node:vm';
import { renderLaunchPage, urlpathFrom } from '../../src/web/launch-page.js';

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

/** Stand-ins for the browser APIs the page's script uses; `ready` plays a final event. */
function runPageScript(urlpath: string, pageUrl = 'http://bindery.test/v2/gh/o/r/HEAD') {
  const html = renderLaunchPage({ provider: 'gh', spec: 'o/r/HEAD', urlpath });
  const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
  const element = () => ({ textContent: '', className: '', open: false, scrollTop: 0 });
  const elements = new Map<string, ReturnType<typeof element>>();
  const sources: { url: string; closed: boolean; onmessage?: (event: { data: string }) => void }[] =
    [];
  const window = { location: { href: pageUrl } };
  runInNewContext(script, {
    URL,
    window,
    document: {
      getElementById: (id: string) => elements.get(id) ?? elements.set(id, element()).get(id),
    },
    EventSource: function (this: (typeof sources)[number], url: string) {
      this.url = url;
      this.closed = false;
      Object.assign(this, { close: () => (this.closed = true) });
      sources.push(this);
    },
  });
  const source = sources[0]!;
  return {
    source,
    ready(url: string, token = 'abc123') {
      source.onmessage!({ data: JSON.stringify({ phase: 'ready', url, token }) });
      return window.location.href;
    },
  };
}

describe('the launch page’s script', () => {
  const server = 'http://bindery.test/user/bindery-0123456789ab/';

  it('follows the build of its own spec', () => {
    expect(runPageScript('').source.url).toBe('/build/gh/o/r/HEAD');
  });

  it('opens the server URL with the token when there is no urlpath', () => {
    expect(runPageScript('').ready(server)).toBe(`${server}?token=abc123`);
  });

  it('resolves urlpath against the server URL, then appends the token', () => {
    expect(runPageScript('lab/tree/index.ipynb').ready(server)).toBe(
      `${server}lab/tree/index.ipynb?token=abc123`,
    );
    expect(runPageScript('doc/tree/my%20notes.ipynb').ready(server)).toBe(
      `${server}doc/tree/my%20notes.ipynb?token=abc123`,
    );
  });

  it('keeps a query and a fragment that urlpath carries', () => {
    expect(runPageScript('lab/tree/a.ipynb?x=1').ready(server)).toBe(
      `${server}lab/tree/a.ipynb?x=1&token=abc123`,
    );
    expect(runPageScript('lab/tree/a.ipynb?x=1#section-2').ready(server)).toBe(
      `${server}lab/tree/a.ipynb?x=1&token=abc123#section-2`,
    );
  });

  it('resolves a server URL given relative to the page', () => {
    expect(runPageScript('tree').ready('/user/bindery-0123456789ab/')).toBe(
      `${server}tree?token=abc123`,
    );
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
      expect([escape, runPageScript(escape).ready(server)]).toEqual([
        escape,
        `${server}?token=abc123`,
      ]);
    }
  });

  it('closes the event stream once the session is ready', () => {
    const page = runPageScript('');
    page.ready(server);
    expect(page.source.closed).toBe(true);
  });
});
