import type { Request, Response } from 'express';
import { defaultLog } from '../log/create-log.js';
import { isImageName, renderBuildLogNotice, renderBuildLogPage } from './build-log-page.js';
import type { WebDeps } from './web-deps.js';

/**
 * Where a Bindery check run's "Details" link goes: /logs/<image name>, its `/` and `:` escaped
 * or not. The page has no script, so the policy forbids any; it is never cached (it changes).
 */
export function buildLogRoute(deps: Pick<WebDeps, 'builds' | 'log'>) {
  return async (request: Request, response: Response) => {
    const html = (status: number, body: string) =>
      response
        .status(status)
        .type('html')
        .set('cache-control', 'no-store')
        .set('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
        .send(body);
    let imageName = '';
    try {
      imageName = decodeURIComponent(request.path.slice('/logs/'.length));
    } catch {
      // A malformed %-escape is no image name either.
    }
    if (!isImageName(imageName)) {
      html(
        400,
        renderBuildLogNotice(
          'Not a build log address',
          'A build log address is /logs/<image name>, such as /logs/bindery/r2d-gh-owner-2drepo-1a2b3c:<commit SHA>; the Details link of a Bindery check run on GitHub gives the right one.',
        ),
      );
      return;
    }
    try {
      const [events, details] = await Promise.all([
        deps.builds.read?.(imageName) ?? [],
        deps.builds.details?.(imageName),
      ]);
      // Private logs are shown only in the GitHub check run, and a private log looks missing.
      // A log without a job is refused too: its job is being replaced, and may have been private.
      if (events.length === 0 || !details || details.private) {
        html(
          404,
          renderBuildLogNotice(
            'No build log',
            `No build log for ${imageName}: it never ran here, or its log expired after 7 days.`,
          ),
        );
        return;
      }
      html(200, renderBuildLogPage({ imageName, events, details, now: Date.now() }));
    } catch (error) {
      (deps.log ?? defaultLog()).error(`build log page: ${(error as Error).message}`);
      html(
        503,
        renderBuildLogNotice(
          'Build logs unavailable',
          'Bindery cannot read its build logs right now; try again in a minute.',
        ),
      );
    }
  };
}
