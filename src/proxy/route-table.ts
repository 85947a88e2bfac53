/** Where the proxy sends `/user/<session>/…`. */
export interface Route {
  /** The session's Jupyter, e.g. `http://172.18.0.5:8888`; paths are forwarded unchanged. */
  target: string;
}

/**
 * The proxy's routing table, keyed by session name (configurable-http-proxy's store idea).
 * Implementations: RedisRouteTable (shared by every web process).
 */
export interface RouteTable {
  get(session: string): Promise<Route | undefined>;
  set(session: string, route: Route): Promise<void>;
  remove(session: string): Promise<void>;
  /** Every route, for reconciling with the engine. */
  all(): Promise<Map<string, Route>>;
}
