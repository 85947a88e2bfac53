/** The port Jupyter listens on in every session container, as in repo2docker's images. */
export const JUPYTER_PORT = 8888;

/**
 * Where a session's Jupyter answers, without a path: the host address and port Docker
 * published it on when it was published (the CLI's `launch`), else the container's address on
 * its network (what the proxy reaches). Undefined when it has neither, e.g. a stopped container.
 */
export function jupyterUrl(found: {
  networkAddress?: string;
  published?: { host: string; port: number };
}): string | undefined {
  if (found.published) return `http://${bracketed(found.published.host)}:${found.published.port}`;
  if (found.networkAddress) return `http://${bracketed(found.networkAddress)}:${JUPYTER_PORT}`;
  return undefined;
}

/** An IPv6 address goes in brackets in a URL. */
const bracketed = (address: string) => (address.includes(':') ? `[${address}]` : address);
