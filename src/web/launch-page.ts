import { escapeHtml } from './escape-html.js';

/**
 * The page behind `/v2/<provider>/<spec>`: follows `/build/<provider>/<spec>` with an
 * EventSource, shows the phases and the build log, and opens the session at `urlpath` (from
 * urlpathFrom) with its token when it is ready, as BinderHub's client does.
 */
export function renderLaunchPage(options: {
  provider: string;
  spec: string;
  urlpath: string;
}): string {
  const buildUrl = `/build/${options.provider}/${options.spec}`;
  const config = JSON.stringify({ buildUrl, urlpath: options.urlpath }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bindery: launching ${escapeHtml(options.spec)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 860px; margin: 3rem auto; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .repo { color: #566; word-break: break-all; margin-bottom: 1.5rem; }
  .phase { display: inline-block; padding: .2rem .7rem; border-radius: 1rem; background: #e4e9f2; font-weight: 600; }
  .phase.failed { background: #fde2e1; color: #9b1c1c; }
  .phase.ready { background: #dcf5e4; color: #17663a; }
  .message { margin: 1rem 0; }
  details { margin-top: 1rem; }
  pre { background: #10141c; color: #d6deeb; padding: 1rem; border-radius: .5rem; max-height: 50vh; overflow: auto; font-size: 13px; white-space: pre-wrap; }
</style>
</head>
<body>
<main>
  <h1>Starting your Binder</h1>
  <div class="repo">${escapeHtml(`${options.provider}/${options.spec}`)}</div>
  <span id="phase" class="phase">connecting</span>
  <p id="message" class="message">Asking the server for this repository…</p>
  <details id="log-box"><summary>Build log</summary><pre id="log"></pre></details>
</main>
<script>
const config = ${config};
const phase = document.getElementById('phase');
const message = document.getElementById('message');
const log = document.getElementById('log');
const source = new EventSource(config.buildUrl);
source.onmessage = (event) => {
  const data = JSON.parse(event.data);
  phase.textContent = data.phase;
  phase.className = 'phase ' + data.phase;
  if (data.phase === 'building' || data.phase === 'fetching') {
    log.textContent += data.message.replace(/\\x1b\\[[0-9;]*m/g, '');
    log.scrollTop = log.scrollHeight;
    // Build events carry log lines, not news: without this the page still says "Waiting…".
    message.textContent =
      data.phase === 'building' ? 'Building the image (see the build log).' : 'Fetching the repository…';
  } else if (data.message) {
    message.textContent = data.message;
  }
  if (data.phase === 'failed') {
    source.close();
    document.getElementById('log-box').open = true;
  }
  if (data.phase === 'ready' && data.url) {
    source.close();
    const target = sessionUrl(data.url, config.urlpath, data.token);
    message.textContent = 'Ready: opening ' + target.origin + target.pathname;
    window.location.href = target.href;
  }
};
// BinderHub's LaunchSpec.getJupyterServerRedirectUrl: urlpath resolved against the server's
// URL, then the token appended, so a urlpath's own query and fragment are kept. Unlike
// BinderHub, a urlpath that resolves outside the session (../, another host, javascript:)
// opens the session's default page instead: the token must not leave /user/<session>/.
function sessionUrl(serverUrl, urlpath, token) {
  const server = new URL(serverUrl, window.location.href);
  let target = new URL(urlpath, server);
  if (target.origin !== server.origin || !target.pathname.startsWith(server.pathname)) {
    target = new URL(server.href);
  }
  target.searchParams.append('token', token);
  return target;
}
source.onerror = () => {
  if (phase.className.includes('ready') || phase.className.includes('failed')) return;
  message.textContent = 'Lost the connection to the server; retrying…';
};
</script>
</body>
</html>
`;
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
