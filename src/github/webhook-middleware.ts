import { verify } from '@octokit/webhooks-methods';
import express, { type Router } from 'express';
import { createNodeMiddleware, type ApplicationFunction, type Probot } from 'probot';

/** Where GitHub delivers the app's webhooks (DESIGN §4.3). */
export const WEBHOOKS_PATH = '/api/github/webhooks';

/** GitHub caps a webhook payload at 25 MB. */
const MAX_PAYLOAD = '25mb';

export interface WebhookMiddlewareOptions {
  probot: Probot;
  /** The app: the handlers that turn events into jobs. */
  handlers: ApplicationFunction;
  webhookSecret: string;
  log: (line: string) => void;
}

/**
 * Express middleware for the app's webhooks: the signature is checked first, and a delivery
 * whose signature is missing or wrong is answered 401 with one log line, never reaching Probot
 * (which would answer 400 and log the whole payload). Signed deliveries go to Probot's own
 * middleware, which checks again and runs the handlers.
 */
export async function createWebhookMiddleware({
  probot,
  handlers,
  webhookSecret,
  log,
}: WebhookMiddlewareOptions): Promise<Router> {
  const receive = await createNodeMiddleware(handlers, { probot, webhooksPath: WEBHOOKS_PATH });
  const router = express.Router();
  router.post(
    WEBHOOKS_PATH,
    // Probot verifies the raw text; a string body is used as it is (@octokit/webhooks get-payload).
    express.text({ type: 'application/json', limit: MAX_PAYLOAD }),
    async (request, response, next) => {
      const signature = request.get('x-hub-signature-256');
      if (typeof request.body === 'string') {
        const valid =
          signature !== undefined &&
          (await verify(webhookSecret, request.body, signature).catch(() => false));
        if (!valid) {
          const delivery = request.get('x-github-delivery') ?? 'no delivery id';
          log(
            `github webhook refused: ${signature ? 'its signature does not match' : 'it is not signed'} ` +
              `(${request.get('x-github-event') ?? 'no event'}, ${delivery}); check WEBHOOK_SECRET against the app's settings`,
          );
          response.status(401).json({
            error: signature
              ? 'The signature (X-Hub-Signature-256) does not match this payload: the webhook secret differs from WEBHOOK_SECRET.'
              : 'The delivery is not signed: set a webhook secret in the app settings and the same value in WEBHOOK_SECRET.',
          });
          return;
        }
      }
      await receive(request, response, next);
    },
  );
  return router;
}
