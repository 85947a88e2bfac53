import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { UnavailableError } from '../errors.js';
import type { LayerProgress, RegistryAuth } from './container-engine.js';

/** One message of Docker's push or pull stream. */
type ProgressMessage = {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
};

/** `registry:5000/name` and `sha` of `registry:5000/name:sha`; `latest` when untagged. */
export function splitTag(name: string): { repository: string; tag: string } {
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/')
    ? { repository: name.slice(0, colon), tag: name.slice(colon + 1) }
    : { repository: name, tag: 'latest' };
}

/** The registry host an image name starts with (`registry:5000` of `registry:5000/a/b:c`). */
export const registryOf = (name: string) => name.slice(0, name.indexOf('/'));

/**
 * Docker's registry auth for `name`'s registry, as X-Registry-Auth carries it. Without
 * credentials an empty one: Docker 20.10 refuses a push with no X-Registry-Auth at all.
 */
const authConfig = (name: string, auth: RegistryAuth | undefined) =>
  auth ? { ...auth, serveraddress: registryOf(name) } : {};

/** The message Docker gave, without its "Error response from daemon" wrapping. */
const reasonOf = (error: unknown) =>
  ((error as { json?: { message?: string } }).json?.message ?? (error as Error).message).trim();

/**
 * Whether the registry holds a manifest for `name`, asked through the daemon's distribution
 * endpoint (the daemon talks to the registry as `docker pull` would: the same TLS and
 * insecure-registries rules). 404 is "no such manifest"; anything else but 200 means the
 * registry could not be asked.
 */
export async function registryHasImage(
  docker: Docker,
  name: string,
  auth: RegistryAuth | undefined,
): Promise<boolean> {
  try {
    await docker.getImage(name).distribution({ authconfig: authConfig(name, auth) });
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw new UnavailableError(
      `The registry ${registryOf(name)} could not be asked for ${name}: ${reasonOf(error)}`,
    );
  }
}

/** Follows a push or pull stream to its end; rejects with the first error Docker reports in it. */
function followStream(
  docker: Docker,
  stream: Readable,
  onMessage: (message: ProgressMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: string | undefined;
    docker.modem.followProgress(
      stream,
      (error: Error | null) => {
        if (error) reject(error);
        else if (failure !== undefined) reject(new Error(failure));
        else resolve();
      },
      (message: ProgressMessage) => {
        if (message.error || message.errorDetail) {
          failure ??= message.errorDetail?.message ?? message.error;
        } else {
          onMessage(message);
        }
      },
    );
  });
}

/**
 * Pushes `name` (`registry/repository:tag`, this tag only) to its registry. `onProgress` gets
 * each layer's state as repo2docker reports it to BinderHub: `{current, total}` while a layer
 * uploads, else its status word (`Preparing`, `Pushed`, `Layer already exists`).
 */
export async function pushImage(
  docker: Docker,
  name: string,
  options: { auth?: RegistryAuth; onProgress?: (layers: LayerProgress) => void },
): Promise<void> {
  const { repository, tag } = splitTag(name);
  const layers: LayerProgress = {};
  try {
    const stream = (await docker
      .getImage(repository)
      .push({ tag, authconfig: authConfig(name, options.auth) })) as Readable;
    await followStream(docker, stream, (message) => {
      if (!message.id || message.status === undefined) return;
      const detail = message.progressDetail;
      layers[message.id] =
        detail?.total !== undefined
          ? { current: detail.current ?? 0, total: detail.total }
          : message.status;
      options.onProgress?.({ ...layers });
    });
  } catch (error) {
    throw new UnavailableError(
      `Pushing ${name} to the registry ${registryOf(name)} failed: ${reasonOf(error)}`,
    );
  }
}

/** Pulls `name` from its registry; rejects with UnavailableError saying why it could not. */
export async function pullImage(
  docker: Docker,
  name: string,
  auth: RegistryAuth | undefined,
): Promise<void> {
  const { repository, tag } = splitTag(name);
  try {
    const stream = (await docker.createImage(authConfig(name, auth), {
      fromImage: repository,
      tag,
    })) as Readable;
    await followStream(docker, stream, () => {});
  } catch (error) {
    throw new UnavailableError(
      `Pulling ${name} from the registry ${registryOf(name)} failed: ${reasonOf(error)}`,
    );
  }
}
