import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import { formatBytes } from '../format-bytes.js';
import { createLog } from '../log/create-log.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import type { ReverseProxyOptions } from '../proxy/reverse-proxy.js';
import type { RouteTable } from '../proxy/route-table.js';
import { SESSION_BAR } from '../proxy/session-bar-path.js';
import { sessionUrl } from '../proxy/session-host.js';
import { jupyterLastActivity, removeSession } from '../sessions/cull-sessions.js';
import { ArchiveTooLargeError, measureHome, writeHomeArchive } from '../sessions/home-archive.js';
import type { SessionRecord, SessionStore } from '../sessions/session-store.js';
import { sessionTimeLeft } from '../sessions/session-time-left.js';
import {
  authenticateBar,
  BAR_COOKIE,
  barCookieValue,
  barFormSecret,
  sameSecret,
  type BarAccess,
} from './session-bar-auth.js';
import { barCsp, barMessagePage, sessionBarPage } from './session-bar-page.js';

export interface SessionBarDeps {
  engine: ContainerEngine;
  store: SessionStore;
  routes: RouteTable;
  config: Pick<
    Config,
    'publicUrl' | 'sessionHost' | 'idleTimeoutSeconds' | 'maxAgeSeconds' | 'downloadMaxBytes'
  >;
  now?: () => number;
  /**
   * One line per download and stop (info) and per failure (warn): the service's pino logger
   * fits. @defaultValue a logger of its own from createLog (LOG_LEVEL, LOG_FORMAT)
   */
  log?: { info(message: string): void; warn(message: string): void };
  /**
   * The Share link of a private repository's session for the visitor (its launcher): one that
   * expires (src/web/private-sessions.ts). @defaultValue the session's URL with its token
   */
  shareUrl?(request: IncomingMessage, record: SessionRecord): Promise<string | undefined>;
}

/** What the reverse proxy hands `/user/<session>/_bindery/…` to, as the proxy declares it. */
export type SessionBar = NonNullable<ReverseProxyOptions['sessionBar']>;

/** The largest Stop form Bindery reads: it holds one hex secret. */
const FORM_MAX_BYTES = 4 * 1024;

/** The form's fields, or undefined when the body is larger than FORM_MAX_BYTES. */
async function readForm(request: IncomingMessage): Promise<URLSearchParams | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > FORM_MAX_BYTES) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * The session bar, `/user/<session>/_bindery/`, answered by Bindery itself in the session's
 * path (and on its host name when sessions have their own): Download my work (the home
 * directory as .tar.gz, caches left out, at most BINDERY_DOWNLOAD_MAX_SIZE), Share (the
 * session's URL with its token), Stop (as the culler stops it), and the time left before the
 * culler would. Only whoever holds the session may use it (authenticateBar); anyone else gets
 * the same 403 whether the session exists or not.
 */
export function createSessionBar(deps: SessionBarDeps): SessionBar {
  const { config, store } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.log ?? createLog().child({ component: 'session-bar' });
  const secure = config.publicUrl.startsWith('https:');
  const downloading = new Set<string>();

  function send(response: ServerResponse, status: number, page: string, nonce: string): void {
    response.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(page)),
      'content-security-policy': barCsp(nonce),
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      // The bar's address may carry the token for a moment; no link may pass it on.
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    });
    response.end(page);
  }

  const message = (
    response: ServerResponse,
    status: number,
    title: string,
    text: string,
    link?: { href: string; text: string },
  ) => {
    const nonce = randomBytes(16).toString('base64');
    send(response, status, barMessagePage(title, text, nonce, link), nonce);
  };

  const refuse = (response: ServerResponse) =>
    message(
      response,
      403,
      'Not your session',
      'This page belongs to a session and opens only for whoever holds it: open it from inside your session, or with the link (it carries the session token) that started it.',
    );

  async function showBar(
    request: IncomingMessage,
    response: ServerResponse,
    record: SessionRecord,
  ): Promise<void> {
    const at = now();
    const [proxySeen, jupyterSeen] = await Promise.all([
      store.lastActivity(record.name),
      jupyterLastActivity(record, at),
    ]);
    const timeLeft = sessionTimeLeft(
      { createdAt: record.createdAt, lastActivity: [proxySeen, jupyterSeen] },
      config,
      at,
    );
    const nonce = randomBytes(16).toString('base64');
    const page = sessionBarPage(
      {
        session: record.name,
        repo: record.repo,
        shareUrl:
          (await deps.shareUrl?.(request, record)) ??
          `${sessionUrl(config, record.name)}?token=${encodeURIComponent(record.token)}`,
        labUrl: `/user/${record.name}/lab`,
        timeLeft,
        idleTimeoutSeconds: config.idleTimeoutSeconds,
        maxAgeSeconds: config.maxAgeSeconds,
        downloadMaxBytes: config.downloadMaxBytes,
        formSecret: barFormSecret(record.token),
      },
      nonce,
    );
    send(response, 200, page, nonce);
  }

  async function download(response: ServerResponse, record: SessionRecord): Promise<void> {
    if (downloading.has(record.name)) {
      return message(
        response,
        429,
        'Download under way',
        'A download of this session is already under way; wait for it to finish, then try again.',
      );
    }
    downloading.add(record.name);
    const started = now();
    try {
      const cap = config.downloadMaxBytes;
      // Measured first: past the cap, the visitor gets a sentence, not half an archive.
      const bytes = await measureHome(deps.engine, record.containerId, cap);
      response.writeHead(200, {
        'content-type': 'application/gzip',
        'content-disposition': `attachment; filename="${record.name}-work.tar.gz"`,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
      });
      await writeHomeArchive(deps.engine, record.containerId, response, {
        maxBytes: cap,
        topDirectory: `${record.name}-work`,
      });
      log.info(`session bar: ${record.name}: sent ${bytes} bytes of work in ${now() - started} ms`);
    } catch (error) {
      if (response.headersSent) {
        log.warn(`session bar: ${record.name}: download cut short: ${(error as Error).message}`);
        return void response.destroy();
      }
      if (error instanceof ArchiveTooLargeError) {
        return message(
          response,
          413,
          'Too much to download',
          `Your home directory holds more than ${formatBytes(error.maxBytes)} (caches left out), the most this service sends as one download. Delete what you no longer need (large data files, outputs), or download big files one by one from JupyterLab's file browser, then try again.`,
          { href: './', text: 'Back to the session bar' },
        );
      }
      log.warn(`session bar: ${record.name}: download failed: ${(error as Error).message}`);
      return message(
        response,
        503,
        'Download failed',
        "Bindery could not read the session's files: it may have just stopped. Reload the session bar to see whether it is still running.",
      );
    } finally {
      downloading.delete(record.name);
    }
  }

  async function stop(
    request: IncomingMessage,
    response: ServerResponse,
    record: SessionRecord,
    access: BarAccess,
  ): Promise<void> {
    // A cookie goes with any form another page posts here; only the bar's own page holds the
    // secret. A token in the request is proof enough: no other page knows it.
    if (access === 'bar cookie' || access === 'jupyter cookie') {
      const secret = (await readForm(request))?.get('secret') ?? '';
      if (!sameSecret(secret, barFormSecret(record.token))) {
        return message(
          response,
          403,
          'Not stopped',
          'This request to stop the session did not come from its session bar; open the bar and press Stop there.',
        );
      }
    }
    await removeSession(deps, record);
    log.info(`session bar: ${record.name}: stopped by its holder`);
    message(
      response,
      200,
      'Session stopped',
      'Your session has stopped and its files are gone. Launch the repository again for a fresh session.',
      { href: `${config.publicUrl}/`, text: 'Go to the launch page' },
    );
  }

  return {
    async handle(request, response, session, rest) {
      const [path = '', query] = rest.split('?', 2);
      const barUrl = `/user/${session}/${SESSION_BAR}/`;
      if (path === '') {
        response.writeHead(302, { location: `${barUrl}${query ? `?${query}` : ''}` });
        return void response.end();
      }
      const record = await store.get(session);
      const access = record && (await authenticateBar(request, record));
      if (!record || !access) return refuse(response);
      const method = request.method ?? 'GET';
      const reading = method === 'GET' || method === 'HEAD';
      if (path === '/' && reading) {
        if (access !== 'token in query') return showBar(request, response, record);
        // Trade the token in the address for a cookie of the bar's own, then drop it from view.
        const cookie = [
          `${BAR_COOKIE}=${barCookieValue(record.token)}`,
          `Path=${barUrl}`,
          'HttpOnly',
          'SameSite=Lax',
          ...(secure ? ['Secure'] : []),
        ].join('; ');
        response.writeHead(303, {
          location: barUrl,
          'set-cookie': cookie,
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-store',
        });
        return void response.end();
      }
      if (path === '/download' && reading) return download(response, record);
      if (path === '/stop' && method === 'POST') return stop(request, response, record, access);
      return message(
        response,
        404,
        'Not part of the session bar',
        `The session bar has no page ${path}; its page is ${barUrl}.`,
        { href: barUrl, text: 'Open the session bar' },
      );
    },
  };
}
