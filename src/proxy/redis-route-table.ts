import type { Redis } from 'ioredis';
import type { Route, RouteTable } from './route-table.js';

export interface RedisRouteTableOptions {
  /** Routes live in the hash `<prefix>:routes`. @defaultValue `bindery` */
  prefix?: string;
  /**
   * How long a route read from Redis is reused before asking Redis again, in ms. A route
   * another process removed can be used this much longer (its target then answers 503).
   * @defaultValue 2000
   */
  cacheTtlMs?: number;
  /** The clock, for tests. @defaultValue Date.now */
  now?: () => number;
}

/** Past this many cached routes, expired ones are swept on the next insert. */
const SWEEP_ABOVE = 1_000;

function parseRoute(text: string | null): Route | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<Route>;
    return typeof value.target === 'string' ? { target: value.target } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The route table in a Redis hash (session name → JSON route), shared by every web process.
 * Found routes are cached in this process for `cacheTtlMs`, so the proxy's hot path asks
 * Redis about a session at most once per interval; concurrent misses share one HGET. Misses
 * are not cached: a session another process just launched must be reachable at once.
 * `set` and `remove` update this process's cache immediately.
 */
export class RedisRouteTable implements RouteTable {
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, { route: Route; expires: number }>();
  private readonly pending = new Map<string, Promise<Route | undefined>>();

  constructor(
    private readonly redis: Redis,
    options: RedisRouteTableOptions = {},
  ) {
    this.key = `${options.prefix ?? 'bindery'}:routes`;
    this.ttlMs = options.cacheTtlMs ?? 2_000;
    this.now = options.now ?? Date.now;
  }

  get(session: string): Promise<Route | undefined> {
    const cached = this.cache.get(session);
    if (cached && cached.expires > this.now()) return Promise.resolve(cached.route);
    const inFlight = this.pending.get(session);
    if (inFlight) return inFlight;

    const lookup = this.redis
      .hget(this.key, session)
      .then((text) => {
        const route = parseRoute(text);
        // A set or remove in this process while the HGET was out wins over its answer.
        if (this.pending.get(session) === lookup) {
          if (route) this.remember(session, route);
          else this.cache.delete(session);
        }
        return route;
      })
      .finally(() => {
        if (this.pending.get(session) === lookup) this.pending.delete(session);
      });
    this.pending.set(session, lookup);
    return lookup;
  }

  async set(session: string, route: Route): Promise<void> {
    this.pending.delete(session);
    await this.redis.hset(this.key, session, JSON.stringify({ target: route.target }));
    this.remember(session, route);
  }

  async remove(session: string): Promise<void> {
    this.pending.delete(session);
    this.cache.delete(session);
    await this.redis.hdel(this.key, session);
  }

  async all(): Promise<Map<string, Route>> {
    const routes = new Map<string, Route>();
    for (const [session, text] of Object.entries(await this.redis.hgetall(this.key))) {
      const route = parseRoute(text);
      if (route) routes.set(session, route);
    }
    return routes;
  }

  private remember(session: string, route: Route): void {
    const now = this.now();
    if (this.cache.size > SWEEP_ABOVE) {
      for (const [name, entry] of this.cache) if (entry.expires <= now) this.cache.delete(name);
    }
    this.cache.set(session, { route: { target: route.target }, expires: now + this.ttlMs });
  }
}
