import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { RedisRouteTable } from '../../src/proxy/redis-route-table.js';
import { createReverseProxy } from '../../src/proxy/reverse-proxy.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import { createHttpServer } from '../../src/web/http-server.js';
import { createSessionBar, type SessionBarDeps } from '../../src/web/session-bar.js';
import { quietLog } from './capture-log.js';
import { startDefaultSession, type DefaultSession } from './default-session.js';
import { freePort } from './free-port.js';

const exec = promisify(execFile);

/** A proxy with the session bar in front of the harness's session, as `bindery serve` has it. */
export interface BarProxy {
  /** `http://127.0.0.1:<port>`, its public URL. */
  url: string;
  port: number;
}

export interface SessionBarHarness {
  defaults: DefaultSession;
  record: SessionRecord;
  store: SessionStore;
  routes: RedisRouteTable;
  /** What the bar logged. */
  logged: string[];
  /**
   * Starts one more proxy (its own port) whose bar has these settings over the defaults;
   * `sessionHost` a pattern like `{session}.sessions.test` (the port is the proxy's).
   */
  proxy(settings?: Partial<SessionBarDeps['config']> & { sessionHost?: string }): Promise<BarProxy>;
  /** Runs a shell command as the session's user in its container. */
  shell(command: string): Promise<string>;
  /** Stops the proxies, removes the session (if still there), its image and Redis keys. */
  close(): Promise<void>;
}

/**
 * The default fixture built and started as a session (startDefaultSession), recorded in a
 * session store and route table of the calling file's own Redis namespace, and served through
 * reverse proxies with the session bar, each on a free loopback port.
 */
export async function startSessionBarHarness(letter: string): Promise<SessionBarHarness> {
  const namespace = `bindery-test-bar-${letter}${randomBytes(4).toString('hex')}`;
  const redis = new Redis({ maxRetriesPerRequest: 1 });
  const store = new SessionStore(redis, namespace);
  const routes = new RedisRouteTable(redis, { prefix: namespace, cacheTtlMs: 0 });
  const defaults = await startDefaultSession(letter);
  const { session } = defaults;
  const record: SessionRecord = {
    name: session.container.name,
    containerId: session.container.id,
    image: defaults.imageName,
    repo: 'local/default',
    target: new URL(session.url).origin,
    token: session.token,
    createdAt: Date.now(),
  };
  await store.save(record);
  await routes.set(record.name, { target: record.target });
  const servers: Server[] = [];
  const logged: string[] = [];

  return {
    defaults,
    record,
    store,
    routes,
    logged,
    async proxy(settings = {}) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const sessionHost = settings.sessionHost && `${settings.sessionHost}:${port}`;
      const config = {
        publicUrl: url,
        idleTimeoutSeconds: defaults.config.idleTimeoutSeconds,
        maxAgeSeconds: defaults.config.maxAgeSeconds,
        downloadMaxBytes: defaults.config.downloadMaxBytes,
        ...settings,
        sessionHost,
      };
      const proxy = createReverseProxy({
        routes,
        log: quietLog,
        sessionHost,
        publicUrl: url,
        sessionBar: createSessionBar({
          engine: defaults.engine,
          store,
          routes,
          config,
          log: { info: (line) => logged.push(line), warn: (line) => logged.push(line) },
        }),
      });
      const server = createHttpServer((request, response) => {
        if (proxy.owns(request)) return proxy.handleRequest(request, response);
        response.writeHead(404).end('service page');
      }, proxy);
      server.on('close', () => proxy.close());
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      servers.push(server);
      return { url, port: (server.address() as AddressInfo).port };
    },
    async shell(command) {
      const { stdout } = await exec('docker', ['exec', record.containerId, 'sh', '-c', command]);
      return stdout;
    },
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      await defaults.remove().catch(() => {});
      const keys = await redis.keys(`${namespace}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * One HTTP request with the Host header given (fetch would replace it), for sessions on host
 * names of their own: the connection goes to 127.0.0.1 at the URL's port whatever it names.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawAnswer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const asked = httpRequest(
      {
        host: '127.0.0.1',
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers: { host: target.host, ...options.headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
        response.on('error', reject);
      },
    );
    asked.on('error', reject);
    asked.end(options.body);
  });
}
