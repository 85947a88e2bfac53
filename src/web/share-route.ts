import type { Request, Response } from 'express';
import type { Logger } from '../log/create-log.js';
import { SHARE_TTL_SECONDS } from './private-sessions.js';
import type { WebDeps } from './web-deps.js';

/**
 * POST /share/<session>: a share link of a private repository's session, for the signed-in
 * user who launched it. The link carries the session's token and a share id; it lets in
 * signed-in users who may read the repository, until it expires (SHARE_TTL_SECONDS). Anyone
 * else is told the session does not exist. A POST: a page of another site cannot make one
 * with the visitor's cookie (SameSite=Lax).
 */
export function shareRoute(
  deps: Pick<WebDeps, 'config' | 'store' | 'privateAccess' | 'privateSessions'> & { log: Logger },
) {
  return async (request: Request, response: Response): Promise<void> => {
    const session = String(request.params.session);
    const record = await deps.store.get(session);
    const url = record && (await deps.privateSessions?.shareUrl(request, record, deps.config));
    if (!url) {
      response.status(404).json({
        message: `There is no private session ${session} of yours to share: sign in as the user who launched it.`,
      });
      return;
    }
    deps.log.info({ session }, 'private session shared');
    response.set('cache-control', 'no-store').json({
      url,
      expires_in_seconds: SHARE_TTL_SECONDS,
    });
  };
}
