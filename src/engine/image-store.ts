import type { Config } from '../config.js';
import type { ContainerEngine, LayerProgress } from './container-engine.js';

/** How often a push reports its layers, as repo2docker does for BinderHub. */
const PROGRESS_EVERY_MS = 1_500;

/** A `pushing` event, in BinderHub's shape: `progress` holds each layer's state. */
export interface PushEvent {
  phase: 'pushing';
  message: string;
  progress?: LayerProgress;
}

type Engine = Pick<ContainerEngine, 'imageExists' | 'registryHasImage' | 'pushImage' | 'pullImage'>;

/**
 * Where built images are: this engine's own, and BINDERY_REGISTRY's when it is set. With a
 * registry, every build pushes its image and any host pulls it, so an image built on one host
 * is never built again on another; without, each host's Docker is the only store.
 */
export class ImageStore {
  constructor(
    private readonly engine: Engine,
    private readonly config: Pick<Config, 'registry' | 'registryAuth'> &
      Partial<Pick<Config, 'imagePrefix'>>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `name` lives in the registry: one is set and the name starts with its host. */
  shared(name: string): boolean {
    const { registry } = this.config;
    return registry !== undefined && name.startsWith(`${registry}/`);
  }

  /**
   * Whether a launch can have `name` without building it: on this host, or in the registry.
   * Rejects with UnavailableError naming the registry when it must be asked and cannot be.
   */
  async isBuilt(name: string): Promise<boolean> {
    if (await this.engine.imageExists(name)) return true;
    return this.shared(name) && this.engine.registryHasImage(name, this.config.registryAuth);
  }

  /**
   * Whether a build of `name` has nothing left to do: with a registry, the registry holds it
   * (an image only on this host is pushed still); without, this host has it.
   */
  async isPublished(name: string): Promise<boolean> {
    return this.shared(name)
      ? this.engine.registryHasImage(name, this.config.registryAuth)
      : this.engine.imageExists(name);
  }

  /**
   * Pushes `name` to the registry, reporting `pushing` events as BinderHub sends them (the
   * layers every 1.5 s, then "Successfully pushed"); nothing when `name` is not shared.
   */
  async push(name: string, onEvent: (event: PushEvent) => void = () => {}): Promise<void> {
    if (!this.shared(name)) return;
    onEvent({ phase: 'pushing', message: `Pushing ${name} to ${this.config.registry}\n` });
    let reportedAt = this.now();
    let latest: LayerProgress = {};
    await this.engine.pushImage(name, {
      auth: this.config.registryAuth,
      onProgress: (layers) => {
        latest = layers;
        if (this.now() - reportedAt < PROGRESS_EVERY_MS) return;
        reportedAt = this.now();
        onEvent({ phase: 'pushing', message: 'Pushing image\n', progress: layers });
      },
    });
    onEvent({ phase: 'pushing', message: `Successfully pushed ${name}\n`, progress: latest });
  }

  /**
   * Makes sure this host has `name` before a session starts from it: pulls it from the
   * registry when it is shared and missing here. Rejects with UnavailableError naming the
   * registry when the pull fails; a missing image that is not shared is the launch's to report.
   */
  async ensureLocal(name: string): Promise<void> {
    if (!this.shared(name) || (await this.engine.imageExists(name))) return;
    await this.engine.pullImage(name, this.config.registryAuth);
  }

  /**
   * Resolves when the registry answers a manifest lookup (found or not); for /health. The name
   * asked for is under the image prefix, where the credentials have rights (registries with
   * per-repository permissions refuse others), and is no image's: slugs end in a hash.
   */
  async checkRegistry(): Promise<void> {
    const { registry, registryAuth, imagePrefix = `${registry}/` } = this.config;
    if (registry === undefined) return;
    await this.engine.registryHasImage(`${imagePrefix}health-check:absent`, registryAuth);
  }
}
