import { formatBytes } from '../format-bytes.js';
import type { Logger } from '../log/create-log.js';
import { ensureDiskRoom, pruneImages, type PruneDeps, type PruneResult } from './prune-images.js';

/**
 * Runs the image pruner for one process: one run at a time (a run asked for while one is under
 * way is that run), its outcome logged in one line, and awaited on close.
 */
export class ImagePruner {
  private running?: Promise<PruneResult | undefined>;
  private readonly log: Logger;

  /** `log`: the service's logger; the pruner writes to its `images` child. */
  constructor(
    private readonly deps: PruneDeps,
    log: Logger,
  ) {
    this.log = log.child({ component: 'images' });
  }

  /** Removes images over the budget; never rejects (a failure is logged). */
  run(): Promise<PruneResult | undefined> {
    this.running ??= pruneImages(this.deps)
      .then((result) => {
        this.report(result);
        return result;
      })
      .catch((error: Error) => {
        this.log.error(`pruning images failed: ${error.message}`);
        return undefined;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Before a build: makes room on Docker's disk, or rejects with a sentence (ensureDiskRoom). */
  async ensureRoom(): Promise<void> {
    await this.running;
    this.report(await ensureDiskRoom(this.deps));
  }

  /** Waits for a run under way. */
  async close(): Promise<void> {
    await this.running;
  }

  private report(result: PruneResult | undefined) {
    if (!result || result.removed.length === 0) return;
    this.log.info(
      `removed ${result.removed.length} built image(s), least recently launched first ` +
        `(${result.count} left, ${formatBytes(result.bytes)} of their own): ${result.removed.join(', ')}`,
    );
  }
}
