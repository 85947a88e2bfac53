import { hasCredentials, type Config } from '../config.js';
import { UnavailableError } from '../errors.js';
import {
  startIndexForwarder,
  type ForwardedIndex,
  type IndexForwarder,
} from './index-forwarder.js';

/**
 * The host name builds reach the index forwarder by, mapped to the build network's gateway in
 * each build's /etc/hosts: the build arguments stay the same from one build (and network) to
 * the next, so Docker's cache of the dependency steps, which is keyed by them, still holds.
 */
export const INDEX_FORWARDER_HOST = 'bindery-package-index';

/** The package indexes of the configuration (`config.build`). */
export type IndexSettings = Pick<
  Config['build'],
  'pipIndexUrl' | 'pipExtraIndexUrl' | 'pipTrustedHost' | 'indexPort'
>;

/** The build network's addresses, where the forwarder listens and whom it answers. */
export interface NetworkAddresses {
  gateway: string;
  subnet: string;
}

/** What one build is given to reach the package indexes; `close` takes it back. */
export interface IndexAccess {
  /** PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, as far as they are set. */
  buildArgs: Record<string, string>;
  /** `host:address` lines for the build's /etc/hosts. */
  extraHosts: string[];
  close(): Promise<void>;
}

const defined = (entries: Record<string, string | undefined>) =>
  Object.fromEntries(
    Object.entries(entries).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );

/**
 * The index build arguments for a forwarder on `port`: an index URL without credentials as it
 * is (it says nothing secret, in the image history or the log), one with credentials as
 * `http://bindery-package-index:<port>/<n>/<path>`.
 */
export function indexBuildArgs(settings: IndexSettings, port: number): Record<string, string> {
  const { pipIndexUrl, pipExtraIndexUrl, pipTrustedHost } = settings;
  const forwarded = hasCredentials(pipIndexUrl) || hasCredentials(pipExtraIndexUrl);
  const through = (url: string | undefined, i: number) => {
    if (!url || !hasCredentials(url)) return url;
    const { pathname, search } = new URL(url);
    return `http://${INDEX_FORWARDER_HOST}:${port}/${i}${pathname}${search}`;
  };
  return defined({
    PIP_INDEX_URL: through(pipIndexUrl, 0),
    PIP_EXTRA_INDEX_URL: through(pipExtraIndexUrl, 1),
    // The forwarder speaks plain http, which pip uses only for a trusted host.
    PIP_TRUSTED_HOST: forwarded
      ? [pipTrustedHost, INDEX_FORWARDER_HOST].filter(Boolean).join(' ')
      : pipTrustedHost,
  });
}

/** The index build arguments a repository's Dockerfile is checked with, before any forwarder runs. */
export const indexArgsForCheck = (settings: IndexSettings) =>
  indexBuildArgs(settings, settings.indexPort);

/**
 * The package indexes as one build sees them (see indexBuildArgs). Indexes with credentials are
 * served through a forwarder on the build network's gateway, for this build only: the build
 * never sees the credentials, and the address it was given answers nothing once it has ended.
 */
export async function openIndexAccess(
  settings: IndexSettings,
  network: () => Promise<NetworkAddresses>,
): Promise<IndexAccess> {
  const { pipIndexUrl, pipExtraIndexUrl, indexPort } = settings;
  const indexes = [pipIndexUrl, pipExtraIndexUrl].flatMap((upstream, i) =>
    upstream && hasCredentials(upstream) ? [{ upstream, prefix: String(i) }] : [],
  );
  if (indexes.length === 0) {
    return {
      buildArgs: indexBuildArgs(settings, indexPort),
      extraHosts: [],
      close: async () => {},
    };
  }
  const { gateway, subnet } = await network();
  const forwarder = await sharedForwarder(indexes, gateway, subnet, indexPort);
  return {
    buildArgs: indexBuildArgs(settings, forwarder.port),
    extraHosts: [`${INDEX_FORWARDER_HOST}:${gateway}`],
    close: () => forwarder.close(),
  };
}

/** Forwarders listening on a fixed `gateway:port`, shared by the builds on that network at once. */
const listening = new Map<string, { forwarder: Promise<IndexForwarder>; builds: number }>();

/**
 * The forwarder on `gateway:port`: started for the first build on that network, closed when its
 * last build ends. Builds of one process on one fixed network (BINDERY_BUILD_NETWORK, with
 * BINDERY_BUILD_CONCURRENCY over 1) share it, where a second one would find the port taken.
 * Port 0 asks for a new port each time, so nothing is shared.
 */
async function sharedForwarder(
  indexes: ForwardedIndex[],
  gateway: string,
  subnet: string,
  port: number,
): Promise<IndexForwarder> {
  const key = `${gateway}:${port} ${JSON.stringify(indexes)}`;
  let entry = port === 0 ? undefined : listening.get(key);
  if (!entry) {
    entry = { forwarder: startForwarder(indexes, gateway, subnet, port), builds: 0 };
    if (port !== 0) listening.set(key, entry);
    entry.forwarder.catch(() => listening.delete(key));
  }
  const shared = entry;
  shared.builds += 1;
  const forwarder = await shared.forwarder;
  let closed = false;
  return {
    port: forwarder.port,
    async close() {
      if (closed) return;
      closed = true;
      shared.builds -= 1;
      if (shared.builds > 0) return;
      if (listening.get(key) === shared) listening.delete(key);
      await forwarder.close();
    },
  };
}

function startForwarder(
  indexes: ForwardedIndex[],
  gateway: string,
  subnet: string,
  port: number,
): Promise<IndexForwarder> {
  return startIndexForwarder({ indexes, host: gateway, port, clientSubnet: subnet }).catch(
    (error: NodeJS.ErrnoException) => {
      const fix =
        error.code === 'EADDRNOTAVAIL'
          ? "the build network's gateway is not an address of this host (a remote Docker engine?): index URLs with credentials need builds on this host's Docker"
          : 'set BINDERY_BUILD_INDEX_PORT to a port free on this host';
      throw new UnavailableError(
        `The forwarder of the private package index could not listen on ${gateway}:${port} ` +
          `(${error.code ?? error.message}); ${fix}.`,
        { cause: error },
      );
    },
  );
}
