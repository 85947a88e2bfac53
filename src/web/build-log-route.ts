import type { Request, Response } from 'express';
import { defaultLog } from '../log/create-log.js';
import { isImageName, renderBuildLogNotice, renderBuildLogPage } from './build-log-page.js';
import { openEventStream, resumePoint } from './event-stream.js';
import { setPageHeaders } from './page-headers.js';
import type { WebDeps } from './web-deps.js';

/**
 * Where a Bindery check run's "Details" link goes: /logs/<image name>, its `/` and `:` escaped
 * or not. The page shows the stored log; asked for `text/event-stream` (the page's log.js), the
 * same address streams the entries after `after` (or Last-Event-ID) live, to the build's end.
 */
export function buildLogRoute(deps: Pick<WebDeps, 'builds' | 'log'>) {
  return async (request: Request, response: Response) => {
    const html = (status: number, body: string) => {
      setPageHeaders(response);
      response.status(status).type('html').send(body);
    };
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
    const live = /text\/event-stream/.test(request.get('accept') ?? '');
    try {
      const [entries, details] = await Promise.all([
        deps.builds.entries?.(imageName) ?? [],
        deps.builds.details?.(imageName),
      ]);
      // Private logs are shown only in the GitHub check run, and a private log looks missing.
      // A log without a job is refused too: its job is being replaced, and may have been private.
      if (entries.length === 0 || !details || details.private) {
        if (live) {
          response.status(404).json({ message: `No build log for ${imageName}.` });
          return;
        }
        html(
          404,
          renderBuildLogNotice(
            'No build log',
            `No build log for ${imageName}: it never ran here, or its log expired after 7 days.`,
          ),
        );
        return;
      }
      if (live) {
        const stream = openEventStream(request, response);
        try {
          for await (const { id, event } of deps.builds.followFrom(
            imageName,
            resumePoint(request),
            stream.signal,
          )) {
            if (!stream.send(event, id)) await stream.drained();
          }
        } finally {
          stream.end();
        }
        return;
      }
      html(
        200,
        renderBuildLogPage({
          imageName,
          events: entries.map(({ event }) => event),
          lastId: entries.at(-1)?.id,
          details,
          now: Date.now(),
        }),
      );
    } catch (error) {
      (deps.log ?? defaultLog()).error(`build log page: ${(error as Error).message}`);
      if (response.headersSent) {
        response.end();
        return;
      }
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
