import { request as forward, createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface GitRelayOptions {
  /**
   * Answer `status` with a `Location` on `to` (same path and query) instead of passing the
   * request on, from the `fromGet`-th `info/refs` request on (1: every request; 2: the second
   * git process, which is Bindery's fetch after its `ls-remote`).
   */
  redirect?: { status: 301 | 302; to: string; fromGet?: number };
  /**
   * Pass on this many bytes of a fetch's answer (protocol v2 `command=fetch`), then hold the
   * connection open saying nothing more. 0 stalls the fetch before it starts.
   */
  fetchBytes?: number;
}

export interface GitRelay {
  /** http://127.0.0.1:PORT */
  url: string;
  /** What git asked, in order: `GET info/refs`, `ls-refs`, `fetch`, or `redirected`. */
  seen: string[];
  close(): Promise<void>;
}

/** The protocol v2 command a request body carries (`0014command=fetch\n…`), if any. */
function commandOf(request: IncomingMessage, body: Buffer): string | undefined {
  const text = (request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString(
    'latin1',
  );
  return /command=([a-z-]+)/.exec(text)?.[1];
}

/**
 * An HTTP server on loopback in front of a git server (`target`, test/helpers/git-server.ts),
 * that passes git's requests on unchanged except as `options` say: it can redirect them, or
 * answer the ref listing promptly and stall the fetch, so a test knows which stage of a clone
 * met the redirect, the timeout or the size limit.
 */
export async function startGitRelay(
  target: string,
  options: GitRelayOptions = {},
): Promise<GitRelay> {
  const seen: string[] = [];
  let gets = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = request.url ?? '/';
      if (request.method === 'GET') gets += 1;
      const { redirect } = options;
      if (redirect && gets >= (redirect.fromGet ?? 1)) {
        seen.push('redirected');
        response.writeHead(redirect.status, { location: `${redirect.to}${path}` }).end();
        return;
      }
      const command = request.method === 'GET' ? 'GET info/refs' : commandOf(request, body);
      seen.push(command ?? `${request.method} ${path}`);
      const headers = { ...request.headers, host: new URL(target).host };
      const upstream = forward(
        `${target}${path}`,
        { method: request.method, headers },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          const limit = command === 'fetch' ? options.fetchBytes : undefined;
          if (limit === undefined) return void answer.pipe(response);
          let passed = 0;
          answer.on('data', (chunk: Buffer) => {
            const room = Math.max(0, limit - passed);
            if (room > 0) response.write(chunk.subarray(0, room));
            passed += chunk.length;
          });
          // The rest is never sent and the answer never ends: git waits on the open connection.
        },
      );
      upstream.on('error', () => response.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
