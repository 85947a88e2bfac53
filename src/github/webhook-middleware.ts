import type { IncomingMessage, ServerResponse } from 'node:http';
import { verify } from '@octokit/webhooks-methods';
import express, { type Router } from 'express';
import { createNodeMiddleware, type ApplicationFunction, type Probot } from 'probot';
import type { Logger } from '../log/create-log.js';

/** Where GitHub delivers the app's webhooks (DESIGN §4.3). */
export const WEBHOOKS_PATH = '/api/github/webhooks';

/**
 * GitHub caps a webhook payload at 25 MB; a bigger body is not GitHub's.
 * See https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap
 */
export const MAX_PAYLOAD_BYTES = 25 * 2 ** 20;

const TOO_LARGE = `The payload is larger than GitHub's 25 MiB limit for webhook payloads, so it is not GitHub's; nothing was read past the limit.`;

/**
 * Answers `status` with `error` and closes the connection: the rest of the body is never read
 * (body-parser would read it to its end, however long an unbounded chunked body goes on).
 */
function refuseAndClose(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  error: string,
): void {
  request.pause();
  response.once('finish', () => {
    request.socket.end();
    // A sender that keeps writing into a closed window is cut off rather than waited for.
    setTimeout(() => request.socket.destroy(), 2_000).unref();
  });
  response.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
  response.end(JSON.stringify({ error }));
}

/**
 * The body as text, counted as it streams; undefined as soon as it passes `maxBytes` (a
 * Content-Length that says so is believed without reading anything).
 */
function readCappedBody(request: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  if (Number(request.headers['content-length'] ?? 0) > maxBytes) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        request.off('data', onData).off('end', onEnd);
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks).toString('utf8'));
    // A sender that goes away mid-body ends in 'close' without 'end': nothing is held for it.
    const onClose = () => reject(new Error('the request closed before its body ended'));
    request.on('data', onData).on('end', onEnd).on('error', reject).once('close', onClose);
  });
}

export interface WebhookMiddlewareOptions {
  probot: Probot;
  /** The app: the handlers that turn events into jobs. */
  handlers: ApplicationFunction;
  webhookSecret: string;
  /** The service's logger; refusals go to its `github` child at warn. */
  log: Logger;
}

/**
 * Express middleware for the app's webhooks. The body is counted as it streams and refused
 * with 413 past GitHub's 25 MB cap (415 when it is not JSON), its rest never read. Then the
 * signature is checked, and a delivery
 * whose signature is missing or wrong is answered 401 with one log line, never reaching Probot
 * (which would answer 400 and log the whole payload). Signed deliveries go to Probot's own
 * middleware, which checks again and runs the handlers.
 */
export async function createWebhookMiddleware({
  probot,
  handlers,
  webhookSecret,
  log: serviceLog,
}: WebhookMiddlewareOptions): Promise<Router> {
  const log = serviceLog.child({ component: 'github' });
  const receive = await createNodeMiddleware(handlers, { probot, webhooksPath: WEBHOOKS_PATH });
  const router = express.Router();
  router.post(WEBHOOKS_PATH, async (request, response, next) => {
    // GitHub sends JSON only (the app's webhooks are configured so); anything else is refused
    // before its body is read.
    if (!request.is('application/json')) {
      refuseAndClose(
        request,
        response,
        415,
        'Webhook payloads must be sent as application/json; set the content type to application/json in the app settings.',
      );
      return;
    }
    let body: string | undefined;
    try {
      body = await readCappedBody(request, MAX_PAYLOAD_BYTES);
    } catch {
      // The sender went away mid-body: no one is left to answer.
      request.socket.destroy();
      return;
    }
    if (body === undefined) {
      log.warn(
        { event: request.get('x-github-event'), delivery: request.get('x-github-delivery') },
        `webhook refused: its body passed ${MAX_PAYLOAD_BYTES} bytes`,
      );
      refuseAndClose(request, response, 413, TOO_LARGE);
      return;
    }
    // Probot verifies the raw text; a string body is used as it is (@octokit/webhooks get-payload).
    request.body = body;
    const signature = request.get('x-hub-signature-256');
    const valid =
      signature !== undefined && (await verify(webhookSecret, body, signature).catch(() => false));
    if (!valid) {
      log.warn(
        { event: request.get('x-github-event'), delivery: request.get('x-github-delivery') },
        `webhook refused: ${signature ? 'its signature does not match' : 'it is not signed'}; check WEBHOOK_SECRET against the app's settings`,
      );
      response.status(401).json({
        error: signature
          ? 'The signature (X-Hub-Signature-256) does not match this payload: the webhook secret differs from WEBHOOK_SECRET.'
          : 'The delivery is not signed: set a webhook secret in the app settings and the same value in WEBHOOK_SECRET.',
      });
      return;
    }
    await receive(request, response, next);
  });
  return router;
}
