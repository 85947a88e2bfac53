import { isIP } from 'node:net';
import type { ImageFacts } from '../engine/container-engine.js';
import { RepositoryError } from '../errors.js';
import { isPublicAddress } from '../repos/address-ranges.js';
import type { LookupAll } from '../repos/git-host-guard.js';
import { expandVariables, instructionWords, parseDockerfile } from './dockerfile-instructions.js';

export interface DockerfileGuardOptions {
  /** The repository's Dockerfile's path, for messages. */
  path: string;
  /** The build arguments Bindery passes (they fill ARGs). */
  buildArgs: Readonly<Record<string, string>>;
  /** The base image, the one local image every repository may start from. */
  baseImage: string;
  /** Prefix of the images Bindery builds: repositories' images, never a starting point. */
  imagePrefix: string;
  /** The operator's registry host (BINDERY_REGISTRY), trusted wherever it resolves. */
  registry?: string;
  inspectImage(name: string): Promise<ImageFacts | undefined>;
  lookup: LookupAll;
}

const URL_SOURCE = /^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/|git@)/;

/**
 * Refuses what a repository's Dockerfile would make the Docker daemon fetch on its behalf,
 * outside the build's sandbox: `ADD <url>` (the daemon downloads from its own host, where
 * loopback and private networks are in reach); `FROM` / `COPY --from` naming another
 * repository's image, a local image that is not the base image, or a registry on a private
 * address. Stages of the Dockerfile itself, `scratch`, the base image and images from public
 * registries are fine.
 */
export async function checkRepositoryDockerfile(
  text: string,
  options: DockerfileGuardOptions,
): Promise<void> {
  const vars = new Map<string, string>();
  const stages: string[] = [];
  let base: ImageFacts | undefined;
  const baseFacts = async () => (base ??= await options.inspectImage(options.baseImage));
  const refuse = (line: number, sentence: string): never => {
    throw new RepositoryError(`${options.path} line ${line}: ${sentence}`);
  };

  const checkImage = async (reference: string, line: number, what: string) => {
    const name = reference.toLowerCase();
    if (name === 'scratch' || name === options.baseImage) return;
    if (name.startsWith(options.imagePrefix.toLowerCase())) {
      refuse(
        line,
        `${what} ${reference} is another repository's image, not an image this service shares; start FROM a public image or the base image.`,
      );
    }
    const host = registryHost(name);
    if (host && host !== options.registry?.toLowerCase()) {
      const reason = await privateRegistryReason(host, options.lookup);
      if (reason) {
        refuse(
          line,
          `${what} ${reference} names the registry ${host}, which ${reason}; Bindery only pulls from public registries.`,
        );
      }
    }
    const facts = await options.inspectImage(reference);
    if (!facts) return; // the daemon pulls it from a public registry
    if (facts.id === (await baseFacts())?.id) return;
    if (facts.labels['bindery.kind'] !== undefined || !facts.fromRegistry) {
      refuse(
        line,
        `${what} ${reference} is not an image this service shares (it was built on this host); start FROM a public image or the base image.`,
      );
    }
  };

  for (const instruction of parseDockerfile(text)) {
    const { keyword, line } = instruction;
    const args = expandVariables(instruction.args, vars);
    if (keyword === 'ARG' || keyword === 'ENV') {
      // `ARG NAME[=default]`: a build argument wins over the default. `ENV a=1 b=2` or `ENV a 1`.
      const pairs =
        keyword === 'ENV' && !instruction.args.includes('=')
          ? [instruction.args.split(/\s+/, 1)[0] + '=' + args.replace(/^\S+\s*/, '')]
          : args.split(/\s+/).filter(Boolean);
      for (const pair of pairs) {
        const [name = '', ...value] = pair.split('=');
        const unquoted = value.join('=').replace(/^(["'])(.*)\1$/, '$2');
        if (keyword === 'ARG')
          vars.set(
            name,
            options.buildArgs[name] ?? (value.length ? unquoted : (vars.get(name) ?? '')),
          );
        else vars.set(name, unquoted);
      }
    } else if (keyword === 'FROM') {
      const { words } = instructionWords(args);
      const [image = '', as, stage] = words;
      if (!stages.includes(image.toLowerCase())) await checkImage(image, line, 'FROM');
      stages.push(as?.toUpperCase() === 'AS' && stage ? stage.toLowerCase() : `#${stages.length}`);
    } else if (keyword === 'COPY' || keyword === 'ADD') {
      const { flags, words } = instructionWords(args);
      const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
      if (from !== undefined) {
        const index = /^\d+$/.test(from) ? Number(from) : -1;
        const known = index >= 0 ? index < stages.length - 1 : stages.includes(from.toLowerCase());
        if (!known) await checkImage(from, line, `${keyword} --from`);
      }
      if (keyword === 'ADD') {
        const url = words.slice(0, -1).find((source) => URL_SOURCE.test(source));
        if (url) {
          refuse(
            line,
            `ADD ${url} downloads through the Docker daemon, outside the build's sandbox, so Bindery does not run it; use RUN with curl or wget, which runs inside it.`,
          );
        }
      }
    }
  }
}

/** The registry a reference names, if any: its first part when that has a dot, a colon or is localhost. */
function registryHost(reference: string): string | undefined {
  const [first, ...rest] = reference.split('/');
  if (rest.length === 0 || !first) return undefined;
  return /[.:]/.test(first) || first === 'localhost' ? first.replace(/:\d+$/, '') : undefined;
}

/** Why `host` is not a public registry (a non-public address, or no address), or undefined. */
async function privateRegistryReason(host: string, lookup: LookupAll): Promise<string | undefined> {
  const bare = host.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(bare)) addresses = [bare];
  else if (bare === 'localhost') addresses = ['127.0.0.1'];
  else {
    try {
      addresses = (await lookup(bare)).map((entry) => entry.address);
    } catch {
      return 'does not resolve';
    }
  }
  const inside = addresses.filter((address) => !isPublicAddress(address));
  if (inside.length === 0 && addresses.length > 0) return undefined;
  return `is at ${inside.join(', ') || 'no address'}, a private or local address`;
}
