import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sign } from '@octokit/webhooks-methods';
import express from 'express';
import { Probot } from 'probot';
import { MAX_PAYLOAD_BYTES, createWebhookMiddleware } from '../../src/github/webhook-middleware.js';
import { captureLog } from '../helpers/capture-log.js';
import { WEBHOOK_SECRET, testPrivateKey } from '../helpers/github-harness.js';

const MiB = 2 ** 20;
/** What a client may push before the cut: the cap plus the kernel's socket buffers on both ends. */
const SLACK = 16 * MiB;
/** How much an unbounded sender offers; the server must stop reading long before. */
const OFFERED = 200 * MiB;

let server: Server;
let url: string;
const received: string[] = [];
const logs = captureLog();

beforeAll(async () => {
  const probot = new Probot({ appId: 1, privateKey: testPrivateKey(), secret: WEBHOOK_SECRET });
  const web = express();
  web.use(
    await createWebhookMiddleware({
      probot,
      handlers: (app) => app.onAny(async (event) => void received.push(event.name)),
      webhookSecret: WEBHOOK_SECRET,
      log: logs.log,
    }),
  );
  server = createServer(web);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface Outcome {
  status?: number;
  body: string;
  /** Bytes of body the client handed to its socket before the answer or the cut. */
  sent: number;
  /** Largest growth of this process's resident memory while sending. */
  rssGrowth: number;
}

/**
 * Posts a chunked body (no Content-Length) of up to `limit` bytes as fast as the server takes
 * it, stopping when an answer arrives or the connection is cut.
 */
function sendChunked(contentType: string, limit: number): Promise<Outcome> {
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let rssGrowth = 0;
  const sampler = setInterval(() => {
    rssGrowth = Math.max(rssGrowth, process.memoryUsage().rss - baseline);
  }, 10);
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(64 * 1024, '{');
    let sent = 0;
    let done = false;
    let status: number | undefined;
    let body = '';
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(sampler);
      resolve({ status, body, sent, rssGrowth });
    };
    const request = httpRequest(url, {
      method: 'POST',
      headers: {
        'content-type': contentType,
        'transfer-encoding': 'chunked',
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
      },
    });
    request.on('response', (response) => {
      status = response.statusCode;
      response.setEncoding('utf8');
      response.on('data', (text: string) => (body += text));
      response.on('end', finish);
      response.on('error', finish);
    });
    request.on('error', finish);
    request.on('close', () => setImmediate(() => status === undefined && finish()));
    const pump = () => {
      while (!done && status === undefined && sent < limit) {
        sent += chunk.length;
        if (!request.write(chunk)) {
          request.once('drain', pump);
          return;
        }
      }
      if (sent >= limit) request.end();
    };
    pump();
  });
}

describe('webhook bodies over GitHub’s 25 MB cap', () => {
  it('a chunked body is refused with 413 and a sentence once it passes the cap, not read to its end', async () => {
    const outcome = await sendChunked('application/json', OFFERED);
    expect(outcome.status).toBe(413);
    expect(JSON.parse(outcome.body)).toEqual({
      error: expect.stringMatching(/larger than GitHub's 25 MiB limit for webhook payloads/),
    });
    expect(outcome.sent).toBeLessThan(MAX_PAYLOAD_BYTES + SLACK);
    expect(outcome.rssGrowth).toBeLessThan(40 * MiB);
    expect(received).toEqual([]);
    expect(logs.entries().at(-1)).toMatchObject({
      level: 40,
      component: 'github',
      event: 'push',
      msg: 'webhook refused: its body passed 26214400 bytes',
    });
  }, 60_000);

  it('a body that is not JSON is refused with 415 before it is read', async () => {
    const outcome = await sendChunked('text/plain', OFFERED);
    expect(outcome.status).toBe(415);
    expect(JSON.parse(outcome.body)).toEqual({
      error: expect.stringMatching(/must be sent as application\/json/),
    });
    expect(outcome.sent).toBeLessThan(SLACK);
    expect(received).toEqual([]);
  }, 60_000);

  it('a Content-Length over the cap is refused before any of the body is read', async () => {
    const outcome = await new Promise<{ status?: number; body: string }>((resolve) => {
      const request = httpRequest(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': String(MAX_PAYLOAD_BYTES + 1),
          'x-github-event': 'push',
        },
      });
      request.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (text: string) => (body += text));
        response.on('end', () => resolve({ status: response.statusCode, body }));
      });
      request.on('error', () => resolve({ body: '' }));
      request.flushHeaders();
    });
    expect(outcome.status).toBe(413);
    expect(outcome.body).toMatch(/larger than GitHub's 25 MiB limit/);
  });

  it('a signed delivery under the cap still reaches the app', async () => {
    const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'ping',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': await sign(WEBHOOK_SECRET, body),
      },
      body,
    });
    expect(response.status).toBe(200);
    expect(received).toEqual(['ping']);
  });
});
