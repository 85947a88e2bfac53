import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeGitHub } from './fake-github.js';

/**
 * A GitHub Enterprise host on loopback: the REST API at `/api/v3` answered by `github`, and
 * git over HTTP at `/<owner>/<repo>` passed on to the git server that holds `<owner>/<repo>.git`
 * (one per owner, so owners can differ in what credentials they ask for).
 */
export async function startGheServer(github: FakeGitHub, gitServers: Record<string, string>) {
  const server: Server = createServer((request, response) => {
    const url = request.url ?? '/';
    if (url.startsWith('/api/v3/')) {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        const reply = github.handle(request.method ?? 'GET', url, body || undefined);
        response.writeHead(reply.status, reply.headers);
        response.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
      });
      return;
    }
    const match = /^\/([^/]+)\/([^/]+?)(\.git)?(\/.*)$/.exec(url);
    const target = match && gitServers[match[1]!];
    if (!match || !target) {
      response.writeHead(404).end();
      return;
    }
    const forwarded = httpRequest(
      `${target}/${match[1]}/${match[2]}.git${match[4]}`,
      { method: request.method, headers: { ...request.headers, host: new URL(target).host } },
      (reply) => {
        response.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  github.apiUrl = `http://${host}/api/v3`;
  return {
    /** For GHE_HOST. */
    host,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
