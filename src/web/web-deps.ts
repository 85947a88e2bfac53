import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { ResolvedRepo } from '../build/builder.js';
import type { Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import type { Logger } from '../log/create-log.js';
import type { RouteTable } from '../proxy/route-table.js';
import type { Sandbox } from '../sandbox/prepare-sandbox.js';
import type { BuildJob } from '../queue/build-job.js';
import type { BuildEvent } from '../build-event.js';
import type { BuildLogEntry } from '../queue/build-log.js';
import type { RepoSpec } from '../repos/repo-spec.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { PrivateAccess } from './private-access.js';
import type { PrivateSessions } from './private-sessions.js';

/** What the web layer needs of the build queue and its log (src/queue implements it). */
export interface Builds {
  /** Enqueues the build unless one for the same image is waiting or running. */
  enqueue(job: BuildJob): Promise<unknown>;
  /** The build's log from the start, followed live; ends after its final event. */
  follow(imageName: string, signal: AbortSignal): AsyncIterable<BuildEvent>;
  /**
   * The build's log after the entry `from` (`0-0`: from the start), each event with its stream
   * id, followed live; ends after its final event, at once if that is at or before `from`.
   */
  followFrom(imageName: string, from: string, signal: AbortSignal): AsyncIterable<BuildLogEntry>;
  /** The build's whole stored log with entry ids, oldest first (the log page). */
  entries?(imageName: string): Promise<BuildLogEntry[]>;
  /** `building` or `failed` when the newest build of the image is, for the status badge. */
  status?(imageName: string): Promise<'building' | 'failed' | undefined>;
  /** The build's whole stored log, oldest first; empty when there is none (the log page). */
  read?(imageName: string): Promise<BuildEvent[]>;
  /** What the queue knows of the image's newest build; undefined when it has no job. */
  details?(imageName: string): Promise<BuildDetails | undefined>;
}

/** A build as the queue knows it (BuildQueue.details); times are epoch milliseconds. */
export interface BuildDetails {
  /** Built with a GitHub App installation's credentials: its log is not shown publicly. */
  private: boolean;
  /** When its final try started. */
  startedAt?: number;
  /** When its final try ended. */
  finishedAt?: number;
  /** The repository it builds, and the commit (the log page links to its launch page). */
  spec?: RepoSpec;
  ref?: string;
}

/** Everything the Express app is made from; every side effect comes in here. */
export interface WebDeps {
  config: Config;
  engine: ContainerEngine;
  /** Pins a spec to a commit and names its image (Builder.resolve). */
  resolve(spec: RepoSpec): Promise<ResolvedRepo>;
  builds: Builds;
  store: SessionStore;
  routes: RouteTable;
  sandbox: Sandbox;
  redis: Redis;
  /** Prefix of this service's Redis keys. */
  namespace: string;
  version: string;
  /** The GitHub App's webhook endpoint (src/github), when the app is on. */
  webhooks?: RequestHandler;
  /** The service's logger: the access log and failures go to its `web` child. @defaultValue defaultLog() */
  log?: Logger;
  /** The GitHub App's installation on `owner/repo` (private repositories are fetched by it). */
  installationFor?(owner: string, repo: string): Promise<number | undefined>;
  /** Private repositories for signed-in readers, when sign-in is on. @defaultValue made by createApp */
  privateAccess?: PrivateAccess;
  /** Who may reach a private repository's session (the proxy asks it too). */
  privateSessions?: PrivateSessions;
}
