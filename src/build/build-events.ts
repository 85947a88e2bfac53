import type { LayerProgress } from '../engine/container-engine.js';

/**
 * What a build reports as it goes, in BinderHub's phase names so the launch service can
 * forward them to EventSource clients unchanged.
 */
export type BuildPhase = 'fetching' | 'building' | 'pushing' | 'built' | 'failed';

export interface BuildEvent {
  phase: BuildPhase;
  /** One line for a person: a log line while building, a summary otherwise. */
  message: string;
  imageName?: string;
  /** On `pushing` events: each layer's state, as BinderHub sends it (LayerProgress). */
  progress?: LayerProgress;
}

export type BuildEventListener = (event: BuildEvent) => void;
