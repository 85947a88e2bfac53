import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, type AddressInfo } from 'node:net';

/** One private index the forwarder serves, under `/<prefix>/` of its own address. */
export interface ForwardedIndex {
  /** The index as the operator configured it, credentials included. */
  upstream: string;
  /** The first path segment the build uses for it, e.g. `0`. */
  prefix: string;
}

export interface IndexForwarderOptions {
  indexes: ForwardedIndex[];
  /** Address to listen on: the build network's gateway. */
  host: string;
  /** Port to listen on; 0 for any free one. */
  port: number;
  /** The build network's subnet (`a.b.c.d/n`): nobody else is answered. */
  clientSubnet: string;
  /** Longest an upstream answer may keep the forwarder waiting. @defaultValue 60 s */
  upstreamTimeoutMs?: number;
}

export interface IndexForwarder {
  /** Port it listens on (the one asked for, or the one the system gave for 0). */
  port: number;
  close(): Promise<void>;
}

/** Headers of pip's request that the index may need; nothing else is passed on. */
const REQUEST_HEADERS = [
  'accept',
  'user-agent',
  'range',
  'if-none-match',
  'if-modified-since',
  'cache-control',
];
/** Headers of the index's answer that pip may need. */
const RESPONSE_HEADERS = [
  'content-type',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
  'accept-ranges',
  'content-range',
];
/** Answers whose links are rewritten: PEP 503 HTML and PEP 691 JSON pages. */
const PAGE_TYPES = /^(text\/html|application\/(vnd\.pypi\.simple\.[\w.]+\+)?json)\b/i;
/** Index pages are small; a larger "page" is passed on as it is, never buffered. */
const MAX_PAGE_BYTES = 64 * 2 ** 20;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** An upstream index: where to send requests, with what, and how its links are recognised. */
interface Upstream {
  prefix: string;
  url: URL;
  authorization?: string;
  /** Absolute links to the upstream's origin, with or without scheme, userinfo or default port. */
  originLinks: RegExp;
  /**
   * The part of the origin a build may ask for: the folder holding the index (`/simple/` →
   * `/`, `/api/v4/projects/1/packages/pypi/simple` → `/api/v4/projects/1/packages/pypi/`),
   * where indexes keep their files too. The credentials may open more of the origin (a
   * GitLab token opens its API): nothing else of it is forwarded.
   */
  scope: string;
}

function upstreamOf({ upstream, prefix }: ForwardedIndex): Upstream {
  const url = new URL(upstream);
  const authorization = url.username
    ? `Basic ${Buffer.from(
        `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
      ).toString('base64')}`
    : undefined;
  url.username = url.password = '';
  // An explicit port must be in the link; the default one may be written or not.
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const originLinks = new RegExp(
    `(?:https?:)?//(?:[^/@"'\\s<>]*@)?${escapeRegExp(url.hostname)}` +
      `${url.port ? `:${port}` : `(?::${port})?`}(?=[/"'?#\\s<>]|$)`,
    'gi',
  );
  const folder = url.pathname.replace(/\/+$/, '');
  const scope = folder.slice(0, folder.lastIndexOf('/') + 1) || '/';
  return { prefix, url, authorization, originLinks, scope };
}

/**
 * A small HTTP server on the build network's gateway that lets builds use private package
 * indexes without ever seeing their credentials: `/<prefix>/<path>` is fetched from the
 * upstream's origin with its `Authorization` header, absolute links and redirects back to that
 * origin are rewritten to come through here again, and only GET and HEAD of the index's own
 * part of the origin, from the build network's own subnet, are answered. What a build step can print or Docker can record is then
 * an address without credentials, useful only while the build runs (the builder closes it).
 */
export async function startIndexForwarder(options: IndexForwarderOptions): Promise<IndexForwarder> {
  const upstreams = new Map(options.indexes.map((index) => [index.prefix, upstreamOf(index)]));
  const clients = new BlockList();
  const [subnet = '', bits = '32'] = options.clientSubnet.split('/');
  clients.addSubnet(subnet, Number(bits), 'ipv4');
  const timeoutMs = options.upstreamTimeoutMs ?? 60_000;

  const server = createServer((request, response) => {
    const refuse = (status: number, text: string) => {
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(`${text}\n`);
    };
    const client = (request.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (!clients.check(client, 'ipv4')) return refuse(403, 'not a build on this network');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return refuse(405, 'only GET and HEAD are forwarded');
    }
    // Only the path is read, so an absolute-form request line cannot aim elsewhere.
    const path = /^\/([^/?#]+)(\/[^#]*)?$/.exec(request.url ?? '');
    const upstream = path && upstreams.get(path[1]!);
    if (!upstream) return refuse(404, 'no such index');
    // Checked as the upstream will read it: dot segments resolved, and no escaped dots,
    // slashes or backslashes that a server might resolve after decoding.
    const target = new URL(path[2] ?? '/', upstream.url.origin);
    if (/%(2e|2f|5c)/i.test(target.pathname) || !target.pathname.startsWith(upstream.scope)) {
      return refuse(404, 'not part of the package index');
    }
    forward(upstream, target, request, response, forwardedOrigin(request), timeoutMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `http://<Host the build used>`: links are rewritten to what the build already reaches. */
const forwardedOrigin = (request: IncomingMessage) => `http://${request.headers.host ?? ''}`;

function forward(
  upstream: Upstream,
  target: URL,
  request: IncomingMessage,
  response: ServerResponse,
  origin: string,
  timeoutMs: number,
): void {
  const headers: OutgoingHttpHeaders = { 'accept-encoding': 'identity' };
  for (const name of REQUEST_HEADERS) {
    if (request.headers[name] !== undefined) headers[name] = request.headers[name];
  }
  if (upstream.authorization) headers.authorization = upstream.authorization;
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const outgoing = send(target, { method: request.method, headers, timeout: timeoutMs }, (answer) =>
    relay(upstream, answer, response, `${origin}/${upstream.prefix}`, request.method === 'HEAD'),
  );
  outgoing.on('timeout', () => outgoing.destroy(new Error('the index did not answer in time')));
  outgoing.on('error', (error) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.writeHead(502, { 'content-type': 'text/plain' });
    // The build log is public: the upstream's address is not in it, only the reason.
    response.end(
      `the package index could not be reached (${(error as NodeJS.ErrnoException).code ?? error.message})\n`,
    );
  });
  request.on('close', () => {
    if (!response.writableFinished) outgoing.destroy();
  });
  outgoing.end();
}

function relay(
  upstream: Upstream,
  answer: IncomingMessage,
  response: ServerResponse,
  base: string,
  head: boolean,
): void {
  const headers: OutgoingHttpHeaders = {};
  for (const name of RESPONSE_HEADERS) {
    if (answer.headers[name] !== undefined) headers[name] = answer.headers[name];
  }
  const location = answer.headers.location;
  if (location) headers.location = rewriteLocation(upstream, location);
  const length = Number(answer.headers['content-length'] ?? NaN);
  const page =
    !head &&
    PAGE_TYPES.test(String(answer.headers['content-type'] ?? '')) &&
    !(length > MAX_PAGE_BYTES);
  if (!page) {
    if (answer.headers['content-length'] !== undefined) {
      headers['content-length'] = answer.headers['content-length'];
    }
    response.writeHead(answer.statusCode ?? 502, headers);
    answer.pipe(response);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  answer.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_PAGE_BYTES) {
      answer.destroy();
      response.destroy();
      return;
    }
    chunks.push(chunk);
  });
  answer.on('end', () => {
    const body = Buffer.from(
      Buffer.concat(chunks).toString('utf8').replace(upstream.originLinks, base),
    );
    headers['content-length'] = body.length;
    response.writeHead(answer.statusCode ?? 502, headers);
    response.end(body);
  });
  answer.on('error', () => response.destroy());
}

/** A redirect within the index's part of its origin comes back here; one elsewhere is passed on. */
function rewriteLocation(upstream: Upstream, location: string): string {
  let to: URL;
  try {
    to = new URL(location, upstream.url);
  } catch {
    return location;
  }
  if (to.origin !== upstream.url.origin) return location;
  // Elsewhere on the origin: not forwarded, so not rewritten (and never with the credentials).
  if (!to.pathname.startsWith(upstream.scope)) return to.href;
  return `/${upstream.prefix}${to.pathname}${to.search}${to.hash}`;
}
