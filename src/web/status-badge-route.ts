import type { Request, Response } from 'express';
import { ImageStore } from '../engine/image-store.js';
import { BinderyError } from '../errors.js';
import { parseSpec } from '../repos/repo-spec.js';
import { AnswerCache } from './answer-cache.js';
import { statusBadge } from './badges.js';
import { specFromPath } from './build-route.js';
import { checkRate, RateLimitError, requestClient } from './launch-limits.js';
import type { WebDeps } from './web-deps.js';

/** How long a badge's answer is reused: a ref's state changes on the scale of a build. */
const FRESH_MS = 5_000;

interface BadgeAnswer {
  status: number;
  body: string;
}

/**
 * GET /status/<provider>/<spec>.svg: a live badge saying whether that ref's image is built.
 * Working one out resolves the ref on its git host and asks Docker and the queue, so answers
 * are kept for a few seconds per spec (callers asking meanwhile share one), and a client
 * without an API token may have at most BINDERY_STATUS_RATE_LIMIT worked out a minute; past
 * that it gets 429 with Retry-After. An answer from the cache is not counted: GitHub fetches
 * every README's badges through a few camo addresses, and those must keep getting them.
 */
export function statusBadgeRoute(
  deps: Pick<WebDeps, 'config' | 'resolve' | 'engine' | 'builds' | 'redis' | 'namespace'>,
) {
  const answers = new AnswerCache<BadgeAnswer>({ ttlMs: FRESH_MS });
  const badgeFor = async (provider: string, path: string): Promise<BadgeAnswer> => {
    try {
      const resolved = await deps.resolve(
        parseSpec(provider, path, { githubUrl: deps.config.githubUrl }),
      );
      // An image in BINDERY_REGISTRY is built, whichever host built it.
      const status = (await new ImageStore(deps.engine, deps.config).isBuilt(resolved.imageName))
        ? 'built'
        : ((await deps.builds.status?.(resolved.imageName)) ?? 'not built');
      return { status: 200, body: statusBadge(status) };
    } catch {
      return { status: 404, body: statusBadge('unknown') };
    }
  };
  // GitHub's camo proxy keeps an image as its Cache-Control allows; `no-cache` makes it ask
  // again each time, which is what a live badge needs.
  const send = (response: Response, { status, body }: BadgeAnswer) =>
    response.status(status).type('image/svg+xml').set('cache-control', 'no-cache').send(body);

  return async (request: Request, response: Response): Promise<void> => {
    const { provider, path } = specFromPath(request.path.replace(/\.svg$/, ''), '/status/');
    const key = `${provider}/${path}`;
    try {
      const kept = answers.peek(key);
      if (kept) {
        send(response, await kept);
        return;
      }
      const client = requestClient(request, deps.config.apiTokens);
      if (client !== undefined) {
        await checkRate(deps.redis, {
          bucket: 'status-rate',
          client,
          perMinute: deps.config.quotas.statusChecksPerMinute,
          namespace: deps.namespace,
          refusal: `Too many status badges from ${client} (more than ${deps.config.quotas.statusChecksPerMinute} a minute).`,
        });
      }
      send(response, await answers.compute(key, () => badgeFor(provider, path)));
    } catch (error) {
      if (error instanceof RateLimitError)
        response.set('retry-after', String(error.retryAfterSeconds));
      const status = error instanceof BinderyError ? error.status : 503;
      send(response, { status, body: statusBadge(status === 429 ? 'try later' : 'unknown') });
    }
  };
}
