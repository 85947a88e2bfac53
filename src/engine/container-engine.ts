import type { Readable } from 'node:stream';
import type { HostCommand } from './host-tools.js';

/** What Bindery needs to know of an image. */
export interface ImageFacts {
  id: string;
  labels: Record<string, string>;
  /** Pulled from a registry (it has a repository digest), rather than built on this host. */
  fromRegistry: boolean;
}

/** An image under Bindery's image prefix, as the image pruner weighs it. */
export interface BuiltImage {
  /** `repository:tag`, starting with the prefix asked for. */
  name: string;
  id: string;
  /** When Docker finished building it, in ms since the epoch. */
  createdAt: number;
  /**
   * Bytes of layers no other image holds: what removing it (its last name) frees. Layers it
   * shares (the base image's, a repository's dependencies shared across commits) are not counted.
   */
  sizeBytes: number;
}

/** Free space where the engine keeps images and containers. */
export interface DiskSpace {
  /** Docker's data root, e.g. /var/lib/docker. */
  path: string;
  freeBytes: number;
}

/** Credentials for a registry (BINDERY_REGISTRY_USERNAME / _PASSWORD). */
export interface RegistryAuth {
  username: string;
  password: string;
}

/**
 * Each layer of an image being pushed, by layer id, as BinderHub's `pushing` events carry it:
 * `{current, total}` bytes while it uploads, else Docker's word for its state (`Pushed`).
 */
export type LayerProgress = Record<string, { current: number; total: number } | string>;

/** Resource limits for a container or a build. */
export interface Limits {
  cpus: number;
  memoryBytes: number;
  pidsLimit?: number;
}

export interface BuildImageOptions {
  /** A tar stream of the build context. */
  context: Readable;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  tag: string;
  labels: Record<string, string>;
  buildArgs: Record<string, string>;
  limits: Limits;
  /** Network the RUN steps use; Docker's default bridge when unset. */
  network?: string;
  /** `name:address` lines added to the RUN steps' /etc/hosts; not part of any cache key. */
  extraHosts?: string[];
  signal?: AbortSignal;
  /**
   * When the build fails, the name for the last image it committed (the layers of its steps
   * that succeeded), so an image budget sees them; unnamed they would stay for good.
   */
  failedTag?: string;
  /** Each line the build prints, in order. */
  onOutput: (line: string) => void;
}

export interface RunOptions {
  image: string;
  cmd?: string[];
  env?: Record<string, string>;
  user?: string;
  limits: Limits;
  /** No network at all (verify scripts, probes). */
  networkDisabled?: boolean;
  timeoutMs: number;
}

export interface SessionSpec {
  name: string;
  image: string;
  /** The command to run instead of the image's own. */
  cmd?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  limits: Limits;
  runtime?: string;
  network?: string;
  /** Publish the container's port 8888 on this host address, on a free port. */
  publishOn?: string;
  /** Hosts (SessionHost.id) the session must not be placed on: their sandbox is not in place. */
  avoidHosts?: string[];
}

export interface RunningSession {
  id: string;
  name: string;
  /** The container's address on its network. */
  address: string;
  /**
   * Where its Jupyter answers, without a path: `http://<address>:8888`, or the host address
   * and port it was published on when `publishOn` was given. Nobody else assembles it.
   */
  url: string;
}

/** A session container as the engine sees it, found by its `bindery.kind=session` label. */
export interface SessionContainer {
  id: string;
  name: string;
  running: boolean;
  address: string;
  /** Where its Jupyter answers, as `RunningSession.url`; undefined when it has no address (stopped). */
  url?: string;
  labels: Record<string, string>;
}

export interface NetworkSpec {
  name: string;
  /** The Linux bridge's name, so firewall rules can name it. */
  bridge: string;
  /** Whether containers on the network may talk to each other. */
  interContainer: boolean;
  labels: Record<string, string>;
}

/** A network as the engine lists it. */
export interface NetworkFacts {
  name: string;
  /** Its IPv4 subnet; empty when it has none. */
  subnet: string;
  /** The Linux bridge's name, when it is a bridge network. */
  bridge: string;
  created: Date;
  labels: Record<string, string>;
}

/** A machine that sessions may be placed on, reached through the engine (a Swarm node). */
export interface SessionHost {
  /** The engine's id for it (the node id), as SessionSpec.avoidHosts takes it. */
  id: string;
  /** Its name, for people (the node's hostname). */
  name: string;
  /** The IPv4 subnet of the sessions' network there; empty when it has none yet. */
  subnet: string;
  /** Runs one of that host's own programs (`iptables`…) in its network namespace, as root. */
  run: HostCommand;
}

/**
 * Everything Bindery asks of a container engine, in Bindery's words: DockerEngine (one host's
 * daemon) and SwarmEngine (sessions as Swarm services).
 */
export interface ContainerEngine {
  /** Resolves when the engine answers; rejects with UnavailableError otherwise. */
  ping(): Promise<void>;
  imageExists(name: string): Promise<boolean>;
  /** The image's id, labels and whether it came from a registry; undefined when missing. */
  inspectImage(name: string): Promise<ImageFacts | undefined>;
  /** Builds and tags an image; rejects with BuildError naming the failing step. */
  buildImage(options: BuildImageOptions): Promise<void>;
  /** Runs a command in a fresh container to its end and removes the container. */
  /** Its exit code and output; `timedOut` when it was killed at `timeoutMs` (exit code 137). */
  runToCompletion(
    options: RunOptions,
  ): Promise<{ exitCode: number; output: string; timedOut?: boolean }>;
  runSession(spec: SessionSpec): Promise<RunningSession>;
  /**
   * Creates the network unless it exists; an existing one must match `spec` (bridge name,
   * inter-container traffic), else this rejects saying what differs.
   */
  ensureNetwork(spec: NetworkSpec): Promise<{ subnet: string; gateway: string }>;
  /**
   * Removes the network; one already gone is not an error. Rejects while a container is still
   * attached (Docker removes a build's containers a moment after the build ends).
   */
  removeNetwork(name: string): Promise<void>;
  /** The IPv4 subnet and gateway of an existing network (`bridge` is Docker's default one). */
  networkAddresses(name: string): Promise<{ subnet: string; gateway: string }>;
  /** Every network carrying `label` (`name=value`). */
  listNetworks(label: string): Promise<NetworkFacts[]>;
  /** Every container labelled `bindery.kind=session`, running or not. */
  listSessions(): Promise<SessionContainer[]>;
  /** Resolves with the exit code when the container stops. */
  waitForExit(idOrName: string): Promise<number>;
  /** Stops and removes a container; a container already gone is not an error. */
  removeContainer(idOrName: string): Promise<void>;
  removeImage(name: string): Promise<void>;
  /**
   * Whether the registry `name` starts with holds it (a manifest lookup); rejects with
   * UnavailableError naming the registry when it cannot be asked.
   */
  registryHasImage(name: string, auth?: RegistryAuth): Promise<boolean>;
  /** Pushes `name` to the registry it starts with; rejects with UnavailableError naming it. */
  pushImage(
    name: string,
    options?: { auth?: RegistryAuth; onProgress?: (layers: LayerProgress) => void },
  ): Promise<void>;
  /** Pulls `name` from the registry it starts with; rejects with UnavailableError naming it. */
  pullImage(name: string, auth?: RegistryAuth): Promise<void>;
  /** Every image with a name starting with `prefix`, one entry per name. */
  listImages(prefix: string): Promise<BuiltImage[]>;
  /** Ids of the images of every container, running or not. */
  imagesInUse(): Promise<Set<string>>;
  /**
   * Removes the name `name` unless a container (running or not) uses the image; false when the
   * engine refused for that reason. An image gone already is not an error.
   */
  removeUnusedImage(name: string): Promise<boolean>;
  /** Free space on the engine's data root; undefined when this process cannot see it (a remote engine). */
  diskSpace(): Promise<DiskSpace | undefined>;
  /**
   * A tar stream of `path` inside a container, as `docker cp` reads it: entries named from the
   * path's last component (`jovyan/…` for /home/jovyan), symbolic links stored, not followed.
   */
  archivePath(idOrName: string, path: string): Promise<Readable>;
  /**
   * The machines sessions on `network` may be placed on when that is not this host alone (Swarm
   * nodes labelled to take sessions), each with its own firewall to keep; none when sessions
   * run on this host, whose firewall is this process's own.
   */
  sessionHosts(network: string): Promise<SessionHost[]>;
}
