import type { Config } from '../config.js';
import { formatBytes } from '../format-bytes.js';
import { formatDuration } from '../format-duration.js';
import { PROVIDERS, type HomeFormField, type HomeFormResult } from './home-form.js';
import { html, type Html } from './html.js';
import { renderPage } from './page-layout.js';

/** The limits every session has, from the service's configuration. */
export function sessionLimits(
  config: Pick<Config, 'session' | 'idleTimeoutSeconds' | 'maxAgeSeconds'>,
) {
  return {
    cpus: `${config.session.cpus} CPU${config.session.cpus === 1 ? '' : 's'}`,
    memory: formatBytes(config.session.memoryBytes),
    idle: formatDuration(config.idleTimeoutSeconds * 1000),
    maxAge: formatDuration(config.maxAgeSeconds * 1000),
  };
}

const fieldError = (result: HomeFormResult | undefined, field: HomeFormField): Html | string =>
  result?.errors?.[field]
    ? html`<p class="field-error" id="${field}-error" role="alert">${result.errors[field]}</p>`
    : '';

const invalid = (result: HomeFormResult | undefined, field: HomeFormField) =>
  result?.errors?.[field] ? html` aria-invalid="true" aria-describedby="${field}-error"` : '';

/** A labelled text box of the form, with the visitor's value and its error beside it. */
const textField = (
  result: HomeFormResult | undefined,
  field: 'repo' | 'ref',
  label: string,
  placeholder: string,
) =>
  html`<div class="field">
    <label for="${field}">${label}</label>
    <input
      id="${field}"
      name="${field}"
      value="${result?.input?.[field] ?? ''}"
      placeholder="${placeholder}"
      autocomplete="off"
      spellcheck="false"
      ${invalid(result, field)}
    />
    ${fieldError(result, field)}
  </div>`;

const copyBlock = (id: string, label: string, text: string) =>
  html` <div class="copy">
    <label for="${id}">${label}</label>
    <div class="copy-row">
      <textarea id="${id}" readonly rows="${text.split('\n').length}">${text}</textarea
      ><button type="button" class="copy-button" data-copy="${id}">Copy</button>
    </div>
  </div>`;

/**
 * The home page: what Bindery is, the form that makes a launch link and badges (submitted as
 * a GET to `/`, so it works without script; home.js adds the copy buttons' clipboard), and the
 * limits of a session. `result` is the evaluated form when the visitor submitted one.
 */
export function renderHomePage(options: {
  config: Pick<Config, 'session' | 'idleTimeoutSeconds' | 'maxAgeSeconds'>;
  result?: HomeFormResult;
}): string {
  const { result } = options;
  const input = result?.input;
  const limits = sessionLimits(options.config);
  const providers = Object.entries(PROVIDERS).map(
    ([value, label]) =>
      html`<option value="${value}" ${input?.provider === value ? html` selected` : ''}>
        ${label}
      </option>`,
  );
  const launch = result?.launch;
  const body = html`<main>
    <h1>Bindery</h1>
    <p class="lead">
      Turn a git repository into a live Jupyter session anyone can open from a link, like
      <a href="https://mybinder.org">mybinder.org</a>.
    </p>
    <section class="about">
      <h2>What is this?</h2>
      <p>
        Give a repository of notebooks. Bindery builds an environment from its files
        (<code>requirements.txt</code>, <code>environment.yml</code>, <code>Dockerfile</code>… as
        repo2docker reads them) and opens it in JupyterLab in your browser. Share the link or the
        badge below, and every visitor gets a session of their own.
      </p>
    </section>
    <form class="launch-form" method="get" action="/" novalidate>
      <div class="field">
        <label for="provider">Repository host</label>
        <select id="provider" name="provider">
          ${providers}
        </select>
        ${fieldError(result, 'provider')}
      </div>
      ${textField(result, 'repo', 'Repository', 'owner/name, or paste its https:// address')}
      ${textField(result, 'ref', 'Branch, tag or commit', 'HEAD (the default branch)')}
      <div class="field">
        <label for="path">Path to open <span class="hint">(optional)</span></label>
        <div class="path-row">
          <input
            id="path"
            name="path"
            value="${input?.path ?? ''}"
            placeholder="index.ipynb"
            autocomplete="off"
            spellcheck="false"
            ${invalid(result, 'path')}
          />
          <select id="pathType" name="pathType" aria-label="The path is">
            <option value="file" ${input?.pathType === 'url' ? '' : html` selected`}>File</option>
            <option value="url" ${input?.pathType === 'url' ? html` selected` : ''}>URL</option>
          </select>
        </div>
        ${fieldError(result, 'path')}
      </div>
      <button type="submit" class="primary">Make a link</button>
    </form>
    ${
      launch
        ? html`<section class="result" id="result">
            <h2>Your launch link</h2>
            ${copyBlock('launch-url', 'Launch URL', launch.url)}
            <p><a class="button primary" id="launch" href="${launch.url}">Launch</a></p>
            <h2>Badge</h2>
            <p>
              <a href="${launch.url}"
                ><img src="/badge_logo.svg" alt="Launch Binder" width="109" height="20"
              /></a>
            </p>
            ${copyBlock('badge-markdown', 'Markdown', launch.markdown)}
            ${copyBlock('badge-rst', 'reStructuredText', launch.rst)}
            ${copyBlock('badge-html', 'HTML', launch.html)}
          </section>`
        : ''
    }
    <section class="limits">
      <h2>What a session gets</h2>
      <ul id="limits">
        <li>${limits.cpus} and ${limits.memory} of memory.</li>
        <li>It stops after ${limits.idle} without activity, and after ${limits.maxAge} at most.</li>
        <li>Nothing is kept: when it stops, its files are gone. Download what you want to keep.</li>
      </ul>
    </section>
  </main>`;
  return renderPage({
    title: 'Bindery: turn a repository into a live notebook session',
    body,
    scripts: ['home.js'],
  });
}
