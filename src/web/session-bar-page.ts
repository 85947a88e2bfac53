import { formatBytes } from '../format-bytes.js';
import { formatDuration } from '../format-duration.js';
import type { TimeLeft } from '../sessions/session-time-left.js';
import { Html, html } from './html.js';

/**
 * The bar's Content-Security-Policy: its one style sheet and one script are inline, allowed by
 * a nonce fresh for each answer; forms post to the bar only; never in a frame, so a page that
 * embeds the session cannot trick a click on Stop.
 */
export const barCsp = (nonce: string) =>
  [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
main{max-width:720px;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.5rem 0 1rem}
section{background:#fff;border:1px solid #d5dae3;border-radius:8px;padding:1rem;margin:0 0 1rem}
h2{font-size:1.1rem;margin:0 0 .5rem}
p{margin:.4rem 0}
.button,button{display:inline-block;font:inherit;padding:.45rem .9rem;border-radius:6px;border:1px solid #2f5fb3;background:#2f5fb3;color:#fff;text-decoration:none;cursor:pointer}
.danger{background:#b3261e;border-color:#b3261e}
.secondary{background:#fff;color:#2f5fb3}
.warning{background:#fff4e5;border-left:4px solid #e07b00;padding:.5rem .75rem}
.note{color:#5a6375;font-size:.9rem}
input[type=text]{width:100%;box-sizing:border-box;font:14px ui-monospace,monospace;padding:.4rem;margin:.4rem 0}
.time{font-size:1.3rem;font-weight:600}
nav{display:flex;justify-content:space-between;align-items:center}
`;

/** The bar's page shell: viewport for phones, the inline style sheet and script under `nonce`. */
export function renderBarPage(options: {
  title: string;
  body: Html;
  nonce: string;
  script?: string;
}): string {
  const { title, body, nonce, script } = options;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>${title} - Bindery</title>
        <style nonce="${nonce}">
          ${new Html(STYLE)}
        </style>
      </head>
      <body>
        <main>${body}</main>
        ${
          script
            ? html`<script nonce="${nonce}">
                ${new Html(script)};
              </script>`
            : ''
        }
      </body>
    </html> `.text;
}

// The copy button, and the time left counted down between loads of the page.
const SCRIPT = `
document.getElementById('copy').addEventListener('click', async () => {
  const link = document.getElementById('share-link');
  link.select();
  try { await navigator.clipboard.writeText(link.value); } catch { document.execCommand('copy'); }
  document.getElementById('copied').hidden = false;
});
const left = document.getElementById('time-left');
const endsAt = Date.now() + Number(left.dataset.ms);
const show = (ms) => {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? h + ' h ' + (m % 60) + ' min' : m ? m + ' min ' + (s % 60) + ' s' : s + ' s';
};
setInterval(() => { left.textContent = show(endsAt - Date.now()); }, 1000);
`;

export interface BarView {
  session: string;
  /** `gh/owner/repo`, as the session's `bindery.repo` label has it. */
  repo: string;
  /** The session's URL with its token: what Share hands out. */
  shareUrl: string;
  /** JupyterLab in this session. */
  labUrl: string;
  timeLeft: TimeLeft;
  idleTimeoutSeconds: number;
  maxAgeSeconds: number;
  downloadMaxBytes: number;
  /** The secret the Stop form carries (barFormSecret). */
  formSecret: string;
}

/** The session bar: Download my work, Share, Stop, and the time left before culling. */
export function sessionBarPage(view: BarView, nonce: string): string {
  const { timeLeft } = view;
  const why =
    timeLeft.reason === 'idle'
      ? html`if it stays idle: sessions unused for ${formatDuration(view.idleTimeoutSeconds * 1000)}
        are stopped. Using it (a page, a running kernel) starts that count again.`
      : html`when it reaches the longest a session may live here,
        ${formatDuration(view.maxAgeSeconds * 1000)}, whatever you do.`;
  const body = html`<nav>
      <h1>Your session</h1>
      <a class="button secondary" href="${view.labUrl}">Back to JupyterLab</a>
    </nav>
    <p class="note">${view.repo} · ${view.session}</p>
    <section id="time">
      <h2>Time left</h2>
      <p>
        This session stops in
        <span class="time" id="time-left" data-ms="${timeLeft.leftMs}"
          >${formatDuration(timeLeft.leftMs)}</span
        >
        ${why}
      </p>
      <p class="note">Nothing is kept after it stops: download your work before then.</p>
    </section>
    <section id="download">
      <h2>Download my work</h2>
      <p>
        Everything in your home directory (the repository and what you made or changed) as a
        .tar.gz, caches left out, up to ${formatBytes(view.downloadMaxBytes)}.
      </p>
      <p><a class="button" id="download-link" href="download">Download my work</a></p>
    </section>
    <section id="share">
      <h2>Share</h2>
      <p>This link opens this same session for someone else, at the same time as you.</p>
      <p class="warning">
        <strong>Anyone holding this link has full access to this session:</strong> they can read,
        change and delete your files and run any code in it, until it stops. Share it only with
        people you trust, and not in public.
      </p>
      <input
        type="text"
        id="share-link"
        readonly
        value="${view.shareUrl}"
        aria-label="Link to this session"
      />
      <p>
        <button type="button" id="copy" class="secondary">Copy link</button>
        <span id="copied" hidden>Copied.</span>
      </p>
    </section>
    <section id="stop">
      <h2>Stop</h2>
      <p>
        Stops the session now and frees its place for others. Files you have not downloaded are
        lost.
      </p>
      <form method="post" action="stop">
        <input type="hidden" name="secret" value="${view.formSecret}" />
        <button type="submit" class="danger" id="stop-button">Stop this session</button>
      </form>
    </section>`;
  return renderBarPage({ title: 'Your session', body, nonce, script: SCRIPT });
}

/** A short page of the bar's own: a refusal, a stopped session, a download over the cap. */
export function barMessagePage(
  title: string,
  message: string,
  nonce: string,
  link?: { href: string; text: string },
): string {
  const body = html`<h1>${title}</h1>
    <section>
      <p>${message}</p>
      ${link ? html`<p><a class="button" href="${link.href}">${link.text}</a></p>` : ''}
    </section>`;
  return renderBarPage({ title, body, nonce });
}
