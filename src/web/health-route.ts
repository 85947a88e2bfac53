import type { Request, Response } from 'express';
import { ImageStore } from '../engine/image-store.js';
import type { WebDeps } from './web-deps.js';

/** How long one run of the checks answers every probe. */
const FRESH_MS = 1_000;
/** Oldest answer a probe is given while the next run of the checks is under way. */
const STALE_MS = 10_000;

interface Health {
  ok: boolean;
  checks: (
    | {
        service: string;
        ok: true;
        ms: number;
        /** What is wrong without stopping it: Swarm nodes set aside, which take no session. */
        warnings?: string[];
      }
    | { service: string; ok: false; message: string }
  )[];
  /** When the checks ran (ISO 8601). */
  checkedAt: string;
}

/**
 * GET /health: `{ ok, checks, checkedAt }`, 503 when a check fails. The checks (Docker, Redis,
 * the sandbox's firewall rules, BINDERY_REGISTRY through Docker when set) run at most once a
 * second whatever the number of requests: an answer is reused for a second, and while the next
 * run is under way probes get the previous answer if it is under 10 s old, so a probe never
 * waits on a busy Docker behind a flood.
 * Health is not rate-limited: a load balancer reads a 429 as "down" and would take a healthy
 * instance out of service, and answering from memory costs less than counting in Redis would.
 */
export function healthRoute(
  deps: Pick<WebDeps, 'engine' | 'redis' | 'sandbox'> & {
    /** BINDERY_REGISTRY, checked when set. */
    config?: Pick<WebDeps['config'], 'registry' | 'registryAuth' | 'imagePrefix'>;
  },
  now: () => number = Date.now,
) {
  const registry = deps.config?.registry ? new ImageStore(deps.engine, deps.config) : undefined;
  let last: { health: Health; at: number } | undefined;
  let running: Promise<{ health: Health; at: number }> | undefined;

  const check = async (service: string, probe: () => Promise<string[] | void>) => {
    const started = Date.now();
    try {
      const warnings = await probe();
      return {
        service,
        ok: true as const,
        ms: Date.now() - started,
        ...(warnings?.length ? { warnings } : {}),
      };
    } catch (error) {
      return { service, ok: false as const, message: (error as Error).message };
    }
  };
  const runChecks = async () => {
    const at = now();
    const checks = await Promise.all([
      check('Docker', () => deps.engine.ping()),
      check('Redis', async () => void (await deps.redis.ping())),
      check('Sandbox', async () => {
        const { ok, problems } = await deps.sandbox.check();
        if (!ok) throw new Error(problems.join('; '));
        return problems;
      }),
      ...(registry ? [check('Registry', () => registry.checkRegistry())] : []),
    ]);
    const health = { ok: checks.every((c) => c.ok), checks, checkedAt: new Date(at).toISOString() };
    last = { health, at: now() };
    return last;
  };

  return async (_request: Request, response: Response) => {
    let answer = last;
    if (!answer || now() - answer.at >= FRESH_MS) {
      running ??= runChecks().finally(() => (running = undefined));
      if (!answer || now() - answer.at >= STALE_MS) answer = await running;
    }
    response
      .status(answer.health.ok ? 200 : 503)
      .set('cache-control', 'no-store')
      .json(answer.health);
  };
}
