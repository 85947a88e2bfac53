import type { LayerProgress } from './engine/container-engine.js';

/**
 * A build's phases in BinderHub's names, so `/build` forwards them to EventSource clients
 * unchanged: `waiting` until a build worker takes the build up, then the builder's own.
 */
export type BuildPhase = 'waiting' | 'fetching' | 'building' | 'pushing' | 'built' | 'failed';

/**
 * One event of a build: what the builder reports as it goes, and what the build's log in Redis
 * (src/queue/build-log.ts) holds and its followers read, the same shape all the way.
 */
export interface BuildEvent {
  phase: BuildPhase;
  /** One line for a person: a log line while building, a summary otherwise. */
  message: string;
  imageName?: string;
  /** On `pushing` events: each layer's state, as BinderHub sends it (LayerProgress). */
  progress?: LayerProgress;
  /**
   * On the final event the build worker writes: milliseconds from its worker taking up this
   * try of the build to its end. It travels with the event because readers stop at the final
   * event, and the queue records the job's end only after the worker has written it.
   */
  durationMs?: number;
}

export type BuildEventListener = (event: BuildEvent) => void;
