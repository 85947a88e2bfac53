import { cullSessions } from '../src/sessions/cull-sessions.js';
import type { RunningRole, ServiceOptions, ServiceParts } from '../src/service.js';

/**
 * The culler role: every `cullIntervalMs` stops sessions idle or past their age, then lets the
 * image pruner free what they leave unused. Closing waits for a cull under way.
 */
export async function startCuller(
  { engine, store, routes, config, pruner, log: serviceLog }: ServiceParts,
  options: Pick<ServiceOptions, 'cullIntervalMs'>,
): Promise<RunningRole> {
  const log = serviceLog.child({ component: 'culler' });
  let culling: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    culling = cullSessions({ engine, store, routes, config })
      .then((culled) => culled.length > 0 && log.info(`culled sessions: ${culled.join(', ')}`))
      .catch((error: Error) => log.error({ err: error }, 'culling failed'))
      // Culled sessions leave their images unused: they may go now if over the budget.
      .then(() => pruner.run());
  }, options.cullIntervalMs ?? 60_000);
  return {
    async close() {
      clearInterval(timer);
      await culling;
    },
  };
}
