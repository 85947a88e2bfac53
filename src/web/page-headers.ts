import type { NextFunction, Request, Response } from 'express';

/**
 * The Content-Security-Policy of Bindery's own pages: scripts, styles and images from this
 * service only (no inline script or style), event streams to it, forms to it, and no framing.
 * A session's redirect is a navigation, which the policy does not limit.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Security and cache headers of every page Bindery renders itself (`/`, `/v2/…`, `/logs/…`):
 * never in a frame, no content sniffing, and not kept by caches, since each answer depends on
 * the moment (a build's state) or the query. Not for `/user/…`: that is the session's, and the
 * proxy passes its headers as Jupyter sent them.
 */
export function setPageHeaders(response: Response): void {
  response.set({
    'content-security-policy': PAGE_CSP,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store',
  });
}

/** setPageHeaders as Express middleware, for the routes that render pages. */
export function pageHeaders(_request: Request, response: Response, next: NextFunction): void {
  setPageHeaders(response);
  next();
}
