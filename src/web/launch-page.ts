import type { RepoSpec } from '../repos/repo-spec.js';
import { PROVIDERS } from './home-form.js';
import { html } from './html.js';
import { renderPage } from './page-layout.js';

/** The steps the launch page's progress bar shows, in BinderHub's phase order (DESIGN §4.1). */
export const LAUNCH_STEPS = [
  ['waiting', 'Waiting'],
  ['fetching', 'Fetching'],
  ['building', 'Building'],
  ['pushing', 'Pushing'],
  ['built', 'Built'],
  ['launching', 'Launching'],
  ['ready', 'Ready'],
] as const;

/** `gh/owner/repo` as a person writes it: `owner/repo` (a git URL stays a URL). */
export const repositoryName = (spec: Pick<RepoSpec, 'provider' | 'repoLabel'>) =>
  spec.repoLabel.slice(spec.provider.length + 1);

/**
 * The page behind `/v2/<provider>/<spec>`: launch.js follows `/build/<provider>/<spec>` with an
 * EventSource, moves the progress bar through the phases, shows the build log as it comes, and
 * opens the session at `urlpath` (from urlpathFrom) with its token when it is ready, as
 * BinderHub's client does. On failure it shows why, links to the whole log and offers a retry.
 * Everything the script needs travels in data attributes: the page has no inline script.
 */
export function renderLaunchPage(options: {
  provider: string;
  /** The spec as it came in the path, still URL-escaped. */
  spec: string;
  repo: Pick<RepoSpec, 'provider' | 'repoLabel' | 'ref'>;
  urlpath: string;
}): string {
  const { repo } = options;
  const host = PROVIDERS[repo.provider as keyof typeof PROVIDERS] ?? repo.provider;
  const body = html`<main
    id="launch"
    data-build-url="/build/${options.provider}/${options.spec}"
    data-urlpath="${options.urlpath}"
  >
    <h1>Starting your Binder</h1>
    <p class="repo">
      <span class="host">${host}</span>
      <span id="repo-name" class="name">${repositoryName(repo)}</span> at
      <span id="repo-ref" class="ref">${repo.ref}</span>
    </p>
    <ol id="steps" class="steps" aria-label="Progress">
      ${LAUNCH_STEPS.map(([phase, label]) => html`<li data-phase="${phase}">${label}</li>`)}
    </ol>
    <p class="status">
      <span id="phase" class="phase">connecting</span>
      <span id="message" class="message">Asking the server for this repository…</span>
      <span id="elapsed" class="elapsed" aria-live="off"></span>
    </p>
    <section id="failure" class="failure" hidden>
      <h2>The launch failed <span id="failed-step"></span></h2>
      <pre id="failure-message" class="failure-message"></pre>
      <p class="actions">
        <button type="button" id="retry" class="primary">Build again</button>
        <a id="full-log" class="button" hidden>Full build log</a>
        <a id="sign-in" class="button" hidden>Sign in with GitHub</a>
      </p>
    </section>
    <details id="log-box" class="log-box" open>
      <summary>Build log</summary>
      <pre id="log" class="log" tabindex="0"></pre>
      <p><a id="log-page" hidden>This log on a page of its own</a></p>
      <p id="follow-note" class="hint" hidden>
        Scrolled up: new lines keep coming below.
        <button type="button" id="follow">Follow the log</button>
      </p>
    </details>
    <noscript
      ><p class="field-error">
        This page needs JavaScript to follow the build;
        <a href="/build/${options.provider}/${options.spec}">the raw event stream</a> shows the
        same.
      </p></noscript
    >
  </main>`;
  return renderPage({
    title: `Bindery: launching ${repositoryName(repo)}`,
    body,
    scripts: ['launch.js'],
    icon: 'building',
    noindex: true,
  });
}

/** The page for a `/v2/…` address that names no repository: why, and the way to the form. */
export function renderLaunchError(sentence: string): string {
  return renderPage({
    title: 'Bindery: not a launch address',
    body: html`<main>
      <h1>Not a launch address</h1>
      <p class="field-error">${sentence}</p>
      <p>
        <a href="/">Make a launch link with the form</a>: it takes a repository's name or its web
        address.
      </p>
    </main>`,
    noindex: true,
  });
}

/** The first value of a query parameter, as `URLSearchParams.get` returns it; undefined if absent. */
function firstValue(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  const first: unknown = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : undefined;
}

/**
 * The path to open in the session, relative to its URL, exactly as BinderHub's client computes
 * it (`LaunchSpec.fromSearchParams` in binderhub-client's spec.js): `urlpath` as given, unless
 * the legacy `labpath=X` (→ `doc/tree/X`) or `filepath=X` (→ `tree/X`) is present, which win
 * over it; X loses one trailing slash and is `encodeURI`d. Leading slashes are dropped, so the
 * path stays under the session's `/user/<session>/`. '' opens the server's default page.
 *
 * @param query - the launch page's query, as Express parses it (repeated names give arrays)
 */
export function urlpathFrom(query: Record<string, unknown>): string {
  const labpath = firstValue(query, 'labpath');
  const filepath = firstValue(query, 'filepath');
  const urlpath =
    labpath !== undefined
      ? `doc/tree/${encodeURI(labpath.replace(/\/$/, ''))}`
      : filepath !== undefined
        ? `tree/${encodeURI(filepath.replace(/\/$/, ''))}`
        : (firstValue(query, 'urlpath') ?? '');
  return urlpath.replace(/^\/+/, '');
}
