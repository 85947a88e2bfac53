import { html, type Html } from './html.js';

/** What a page's favicon shows: the service, or the state of the build the page follows. */
export type PageIcon = 'bindery' | 'building' | 'ready' | 'failed';

/** Where the pages' static files (stylesheet, scripts, icons) are served: see pageAssetsRoute. */
export const ASSETS = '/static';

/**
 * The one layout of Bindery's pages: viewport for phones, the shared stylesheet, a favicon, and
 * scripts loaded from files (the pages' Content-Security-Policy allows no inline script).
 * `body` is `html`-escaped already; `scripts` are file names under ASSETS.
 */
export function renderPage(options: {
  title: string;
  body: Html;
  scripts?: readonly string[];
  icon?: PageIcon;
  /** Search engines skip it: launch and log pages are one visitor's. */
  noindex?: boolean;
}): string {
  const { title, body, scripts = [], icon = 'bindery', noindex = false } = options;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${noindex ? html`<meta name="robots" content="noindex" /> ` : ''}
        <title>${title}</title>
        <link rel="icon" id="favicon" type="image/svg+xml" href="${ASSETS}/favicon-${icon}.svg" />
        <link rel="stylesheet" href="${ASSETS}/style.css" />
        ${scripts.map((name) => html`<script src="${ASSETS}/${name}" defer></script> `)}
      </head>
      <body>
        ${body}
      </body>
    </html> `.text;
}
