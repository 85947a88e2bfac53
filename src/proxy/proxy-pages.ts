import type { IncomingMessage } from 'node:http';

/** What the proxy answers itself, instead of a session. */
export interface ProxyPage {
  status: number;
  title: string;
  /** One or two sentences: what happened and what to do. */
  message: string;
  /** Where to start a session, linked from the page. */
  launchPage?: string;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `session` is undefined when the path names none (`/user/` alone). */
export const noSessionPage = (session: string | undefined, launchPageUrl: string): ProxyPage => ({
  status: 404,
  title: 'No such session',
  message: `${session === undefined ? 'This address names no session.' : `No session named "${session}" is running here.`} Start one from the repository's launch link or badge (/v2/gh/OWNER/REPO/REF), or from the launch page.`,
  launchPage: launchPageUrl,
});

export const sessionGonePage = (session: string, launchPageUrl: string): ProxyPage => ({
  status: 503,
  title: 'Session not running',
  message: `The session "${session}" is no longer running: it may have been stopped after being idle or reaching its maximum age. Start a new one from the repository's launch link or badge, or from the launch page.`,
  launchPage: launchPageUrl,
});

/** A WebSocket to a session's path on the service's host, when sessions have hosts of their own. */
export const sessionElsewherePage = (session: string, location: string): ProxyPage => ({
  status: 404,
  title: 'Session served elsewhere',
  message: `The session "${session}" is served on its own host name, not here: connect to ${location}.`,
});

export const badAnswerPage = (session: string): ProxyPage => ({
  status: 502,
  title: 'Bad answer from the session',
  message: `The session "${session}" answered with something the proxy could not read; reload the page, and start a new session if this persists.`,
});

export const routesUnavailablePage = (): ProxyPage => ({
  status: 503,
  title: 'Sessions unavailable',
  message: 'Bindery cannot look up its sessions right now; try again in a moment.',
});

/** JSON for API clients (Jupyter's own front end calls `…/api/…`), HTML for people. */
export function renderPage(page: ProxyPage, request: IncomingMessage) {
  const accept = request.headers.accept ?? '';
  const json =
    /\/api\//.test(request.url ?? '') ||
    (accept.includes('application/json') && !accept.includes('text/html'));
  const link = page.launchPage
    ? `<p><a href="${escapeHtml(page.launchPage)}">Go to the launch page</a></p>`
    : '';
  const body = json
    ? JSON.stringify({ status: page.status, message: page.message, launch_page: page.launchPage })
    : `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${page.title} - Bindery</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:720px;margin:3rem auto;padding:0 1rem">
<h1>${page.title}</h1><p>${escapeHtml(page.message)}</p>${link}</body></html>\n`;
  return {
    status: page.status,
    headers: {
      'content-type': json ? 'application/json' : 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
    },
    body,
  };
}

/** The page as a whole HTTP/1.1 response, for a socket whose upgrade is refused. */
export function rawResponse(page: ProxyPage, request: IncomingMessage): string {
  const { status, headers, body } = renderPage(page, request);
  const reason = { 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable' }[status];
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${status} ${reason ?? ''}\r\n${lines.join('')}connection: close\r\n\r\n${body}`;
}
