import { describe, expect, it } from '@jest/globals';
import { evaluateHomeForm, homeFormInput, type HomeFormInput } from '../../src/web/home-form.js';
import { renderHomePage } from '../../src/web/home-page.js';
import { html } from '../../src/web/html.js';

const HOST = 'https://binder.example.org';
const form = (fields: Partial<HomeFormInput>) =>
  evaluateHomeForm(
    { provider: 'gh', repo: '', ref: '', path: '', pathType: 'file', ...fields },
    { publicUrl: HOST },
  );
const urlOf = (fields: Partial<HomeFormInput>) => form(fields).launch?.url;

describe('the home form: a launch URL from what was typed', () => {
  it('names each provider’s repository as BinderHub’s /v2/ specs do, HEAD by default', () => {
    expect(urlOf({ repo: 'binder-examples/requirements' })).toBe(
      `${HOST}/v2/gh/binder-examples/requirements/HEAD`,
    );
    expect(urlOf({ provider: 'gl', repo: 'group/sub/project', ref: 'main' })).toBe(
      `${HOST}/v2/gl/group%2Fsub%2Fproject/main`,
    );
    expect(urlOf({ provider: 'gist', repo: 'jdoe/0123abcd' })).toBe(
      `${HOST}/v2/gist/jdoe/0123abcd/HEAD`,
    );
    expect(urlOf({ provider: 'git', repo: 'https://git.example.org/a/b.git', ref: 'a/b' })).toBe(
      `${HOST}/v2/git/https%3A%2F%2Fgit.example.org%2Fa%2Fb.git/a%2Fb`,
    );
  });

  it('understands a pasted address of GitHub, GitLab or a gist, whatever host was chosen', () => {
    expect(urlOf({ provider: 'git', repo: 'https://github.com/o/r.git' })).toBe(
      `${HOST}/v2/gh/o/r/HEAD`,
    );
    expect(urlOf({ repo: 'https://github.com/o/r/tree/dev' })).toBe(`${HOST}/v2/gh/o/r/dev`);
    expect(urlOf({ repo: 'https://github.com/o/r/tree/dev', ref: 'v2' })).toBe(
      `${HOST}/v2/gh/o/r/v2`,
    );
    expect(urlOf({ repo: 'https://gitlab.com/g/p/-/tree/stable' })).toBe(
      `${HOST}/v2/gl/g%2Fp/stable`,
    );
    expect(urlOf({ repo: 'https://gist.github.com/jdoe/0123abcd' })).toBe(
      `${HOST}/v2/gist/jdoe/0123abcd/HEAD`,
    );
    expect(urlOf({ repo: 'https://codeberg.org/o/r.git' })).toBe(
      `${HOST}/v2/git/https%3A%2F%2Fcodeberg.org%2Fo%2Fr.git/HEAD`,
    );
  });

  it('opens a file with labpath and a URL path with urlpath, escaped', () => {
    expect(urlOf({ repo: 'o/r', path: 'notebooks/a b.ipynb' })).toBe(
      `${HOST}/v2/gh/o/r/HEAD?labpath=notebooks%2Fa%20b.ipynb`,
    );
    expect(urlOf({ repo: 'o/r', path: '/lab?reset', pathType: 'url' })).toBe(
      `${HOST}/v2/gh/o/r/HEAD?urlpath=lab%3Freset`,
    );
  });

  it('makes the three badges around the launch URL, with this service’s badge image', () => {
    expect(form({ repo: 'o/r', path: 'a.ipynb' }).launch).toEqual({
      url: `${HOST}/v2/gh/o/r/HEAD?labpath=a.ipynb`,
      markdown: `[![Binder](${HOST}/badge_logo.svg)](${HOST}/v2/gh/o/r/HEAD?labpath=a.ipynb)`,
      rst: `.. image:: ${HOST}/badge_logo.svg\n :target: ${HOST}/v2/gh/o/r/HEAD?labpath=a.ipynb`,
      html: `<a href="${HOST}/v2/gh/o/r/HEAD?labpath=a.ipynb"><img src="${HOST}/badge_logo.svg" alt="Launch Binder"></a>`,
    });
  });

  it('says what is wrong with each field, and makes no link', () => {
    expect(form({}).errors).toEqual({ repo: expect.stringContaining('owner/name') });
    expect(form({ repo: 'o/r/x' }).errors?.repo).toContain('two names joined by one slash');
    expect(form({ repo: 'o/r', ref: 'a b' }).errors).toEqual({
      ref: expect.stringContaining('"a b" is not a valid git ref'),
    });
    expect(form({ provider: 'git', repo: 'git@host:o/r.git' }).errors?.repo).toContain(
      'SSH address',
    );
    expect(form({ provider: 'gist', repo: 'jdoe/not-hex' }).errors?.repo).toContain('gist');
    expect(form({ repo: 'o/r', path: 'https://x/y', pathType: 'url' }).errors?.path).toContain(
      'no scheme',
    );
    expect(form({ repo: 'o/r', ref: 'a b' }).launch).toBeUndefined();
  });

  it('reads its query, falling back to GitHub and a file for values it does not know', () => {
    expect(homeFormInput({ provider: 'svn', repo: [' o/r ', 'x'], pathType: 'dir' })).toEqual({
      provider: 'gh',
      repo: 'o/r',
      ref: '',
      path: '',
      pathType: 'file',
    });
  });
});

describe('the home page', () => {
  const config = {
    session: { cpus: 2, memoryBytes: 512 * 2 ** 20, pidsLimit: 1, runtime: 'runc' as const },
    idleTimeoutSeconds: 900,
    maxAgeSeconds: 7200,
  };

  it('lists the limits of a session from the configuration', () => {
    const page = renderHomePage({ config });
    expect(page).toContain('2 CPUs and 512 MiB of memory');
    expect(page).toContain('after 15 min without activity, and after 2 h at most');
  });

  it('keeps what was typed, escaped, and puts each error next to its field', () => {
    const result = form({ repo: '"><script>x</script>' });
    const page = renderHomePage({ config, result });
    expect(page).not.toContain('<script>x');
    expect(page).toContain('value="&#34;&#62;&#60;script&#62;x&#60;/script&#62;"');
    expect(page).toMatch(/aria-describedby="repo-error"[\s\S]*id="repo-error"/);
  });

  it('the template tag escapes every value but its own results', () => {
    expect(html`<p title="${'"x"'}">${'<b>'}${html`<i>ok</i>`}${['<', html`&amp;`]}</p>`.text).toBe(
      '<p title="&#34;x&#34;">&#60;b&#62;<i>ok</i>&#60;&amp;</p>',
    );
  });
});
