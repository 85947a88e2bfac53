import type { Readable } from 'node:stream';

/** What Bindery needs to know of an image. */
export interface ImageFacts {
  id: string;
  labels: Record<string, string>;
  /** Pulled from a registry (it has a repository digest), rather than built on this host. */
  fromRegistry: boolean;
}

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
  signal?: AbortSignal;
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
}

export interface RunningSession {
  id: string;
  name: string;
  /** The container's address on its network. */
  address: string;
  /** The host port 8888 was published on, when asked. */
  hostPort?: number;
}

/** A session container as the engine sees it, found by its `bindery.kind=session` label. */
export interface SessionContainer {
  id: string;
  name: string;
  running: boolean;
  address: string;
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

/**
 * Everything Bindery asks of a container engine, in Bindery's words. The Docker implementation
 * lives in docker-engine.ts; a Swarm one comes later.
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
  runToCompletion(options: RunOptions): Promise<{ exitCode: number; output: string }>;
  runSession(spec: SessionSpec): Promise<RunningSession>;
  /**
   * Creates the network unless it exists; an existing one must match `spec` (bridge name,
   * inter-container traffic), else this rejects saying what differs.
   */
  ensureNetwork(spec: NetworkSpec): Promise<{ subnet: string; gateway: string }>;
  removeNetwork(name: string): Promise<void>;
  /** Every container labelled `bindery.kind=session`, running or not. */
  listSessions(): Promise<SessionContainer[]>;
  /** Resolves with the exit code when the container stops. */
  waitForExit(idOrName: string): Promise<number>;
  /** Stops and removes a container; a container already gone is not an error. */
  removeContainer(idOrName: string): Promise<void>;
  removeImage(name: string): Promise<void>;
}
