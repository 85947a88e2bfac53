import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import type { Iptables } from '../../src/sandbox/firewall.js';
import { bridgeFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';
import { captureLog, quietLog } from '../helpers/capture-log.js';

/**
 * The firewall is checked, not trusted: a rule changed on the host under a running service
 * turns /health to 503 and refuses launches through the real service, and
 * BINDERY_SANDBOX_OPTOUT=1 is the one way to run sessions without it.
 */
const exec = promisify(execFile);
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const run = randomBytes(3).toString('hex');
const engine = new DockerEngine();
const networks: string[] = [];

let git: GitServer;
let repo: { url: string; sha: string };

/** A whole service on a sandbox network of this file's own (bridge, chain and build networks). */
async function serve(env: Record<string, string> = {}): Promise<TestService> {
  const network = `bindery-test-fw${run}-${networks.length}`;
  networks.push(network);
  return startTestService('fw', { BINDERY_SESSION_NETWORK: network, ...env });
}

const launch = (service: TestService) =>
  readEventStream(`${service.url}/build/git/${encodeURIComponent(repo.url)}/HEAD`);

/** The egress chain of a service's session bridge: where its firewall's rules live. */
const chainOf = (service: TestService) =>
  egressChain({ bridge: bridgeFor(service.config.sandbox.network) });

/** A rule that lets everything out, put first in the chain: what a careless operator might add. */
const openChain = (service: TestService) =>
  exec('iptables', ['-I', chainOf(service), '1', '-j', 'RETURN']);
const closeChain = (service: TestService) =>
  exec('iptables', ['-D', chainOf(service), '-j', 'RETURN']);

async function sessionsOf(service: TestService): Promise<string[]> {
  return (await engine.listSessions())
    .filter((container) => container.labels['bindery.store'] === service.namespace)
    .map((container) => container.id);
}

async function health(service: TestService) {
  const response = await fetch(`${service.url}/health`);
  const body = (await response.json()) as {
    ok: boolean;
    checks: { service: string; ok: boolean; message?: string }[];
  };
  return { status: response.status, body };
}

beforeAll(async () => {
  git = await startGitServer();
  repo = await git.publish('demo', FIXTURE);
});

afterAll(async () => {
  await git?.close();
  for (const network of networks) {
    const config = loadConfig({ BINDERY_SESSION_NETWORK: network });
    await (await prepareSandbox({ engine, config, log: quietLog })).remove().catch(() => {});
  }
}, 120_000);

describe('a firewall rule changed under a running service', () => {
  let service: TestService;
  let ready: StreamEvent;

  beforeAll(async () => {
    service = await serve();
    const { events } = await launch(service);
    ready = events.at(-1)!;
  }, 300_000);

  afterAll(async () => {
    await closeChain(service).catch(() => {});
    await service?.remove();
  }, 120_000);

  test('turns /health to 503 naming the rule, refuses launches, and both come back when it is restored', async () => {
    expect(ready).toMatchObject({ phase: 'ready' });
    expect((await health(service)).status).toBe(200);
    const before = await sessionsOf(service);

    await openChain(service);
    // A launch that comes before anyone asks /health is refused too.
    const { events: first } = await launch(service);
    expect(first.at(-1)).toMatchObject({
      phase: 'failed',
      status_code: 503,
      message: expect.stringMatching(
        /^Sessions are refused: the sandbox's firewall is not in place/,
      ),
    });
    // /health may answer from a run of its checks up to 10 s old (src/web/health-route.ts).
    await waitFor(async () => (await health(service)).status === 503, '/health to say 503', 20_000);
    const { status, body } = await health(service);
    expect(status).toBe(503);
    expect(body.ok).toBe(false);
    expect(body.checks.find((check) => check.service === 'Sandbox')).toMatchObject({
      ok: false,
      message: expect.stringContaining(`${service.config.sandbox.network}: `),
    });
    expect(body.checks.find((check) => check.service === 'Sandbox')?.message).toContain(
      chainOf(service),
    );
    const { events: second } = await launch(service);
    expect(second.at(-1)).toMatchObject({ phase: 'failed', status_code: 503 });
    expect(await sessionsOf(service)).toEqual(before);

    await closeChain(service);
    await waitFor(async () => (await health(service)).status === 200, '/health to say 200', 20_000);
    const { events: third } = await launch(service);
    expect(third.at(-1)).toMatchObject({ phase: 'ready' });
    const answer = await fetch(
      `${String(third.at(-1)!.url)}api/status?token=${String(third.at(-1)!.token)}`,
    );
    expect(answer.status).toBe(200);
  }, 300_000);
});

describe('BINDERY_SANDBOX_OPTOUT=1', () => {
  test('lets sessions start with a changed firewall, and /health stays 200', async () => {
    const service = await serve({ BINDERY_SANDBOX_OPTOUT: '1' });
    try {
      await openChain(service);
      const { status, body } = await health(service);
      // Healthy by the operator's choice, and the problem still shown.
      expect(status).toBe(200);
      expect(body.checks.find((check) => check.service === 'Sandbox')).toMatchObject({ ok: true });
      const { events } = await launch(service);
      expect(events.at(-1)).toMatchObject({ phase: 'ready' });
    } finally {
      await closeChain(service).catch(() => {});
      await service.remove();
    }
  }, 300_000);

  test('when the rules cannot be installed (no root): refused with the reason, or run with a warning', async () => {
    // iptables as a user without CAP_NET_ADMIN answers this.
    const denied: Iptables = async () => {
      throw new Error('iptables v1.8.9 (nf_tables): Permission denied (you must be root)');
    };
    const network = `bindery-test-fw${run}-${networks.length}`;
    networks.push(network);
    for (const optOut of ['0', '1']) {
      const { log, entries } = captureLog();
      const sandbox = await prepareSandbox({
        engine,
        config: loadConfig({ BINDERY_SESSION_NETWORK: network, BINDERY_SANDBOX_OPTOUT: optOut }),
        run: denied,
        run6: denied,
        runLink: denied,
        log,
      });
      if (optOut === '1') {
        expect(await sandbox.check()).toEqual({
          ok: true,
          problems: expect.arrayContaining([expect.stringMatching(/DOCKER-USER lacks/)]),
        });
        expect(entries()).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              level: 40,
              msg: expect.stringMatching(
                /^BINDERY_SANDBOX_OPTOUT=1: sessions and builds run WITHOUT the egress firewall \(.*Permission denied/,
              ),
            }),
          ]),
        );
      } else {
        // Each launch reads this and is refused with the problems (launch-session.ts).
        expect(await sandbox.check()).toEqual({
          ok: false,
          problems: expect.arrayContaining([expect.stringMatching(/DOCKER-USER lacks/)]),
        });
        expect(entries()).toEqual([
          expect.objectContaining({
            level: 50,
            component: 'sandbox',
            msg: expect.stringMatching(
              /^sandbox not in place, sessions and builds are refused: the firewall could not be installed: .*Permission denied/,
            ),
          }),
        ]);
        expect(entries().map(({ msg }) => msg)).not.toContainEqual(expect.stringMatching(/OPTOUT/));
      }
    }
  }, 120_000);
});
