import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const TAGS = 8;

let git: GitServer;
let service: TestService;
let badges: string[];

beforeAll(async () => {
  git = await startGitServer();
  const repo = await git.publish('badged', FIXTURE);
  badges = [];
  for (let i = 0; i < TAGS; i++) {
    await git.commit('badged', { [`tag-${i}.txt`]: `${i}\n` }, `v${i}`);
    badges.push(`/status/git/${encodeURIComponent(repo.url)}/v${i}.svg`);
  }
  service = await startTestService('routelim', {
    BINDERY_STATUS_RATE_LIMIT: '3',
    BINDERY_API_TOKENS: 'route-token',
  });
}, 120_000);

afterAll(async () => {
  await service?.remove();
  await git?.close();
}, 60_000);

/** GET `path` as the client at `address` (the service trusts X-Forwarded-For from loopback). */
async function get(path: string, address: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${service.url}${path}`, {
    headers: { 'x-forwarded-for': address, ...headers },
  });
  return { response, body: await response.text() };
}

describe('/status badges', () => {
  test('a badge asked for again within seconds comes from the cache and is not counted', async () => {
    for (let i = 0; i < 10; i++) {
      const { response, body } = await get(badges[0]!, '203.0.113.7');
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      // GitHub's camo asks again each time for a live badge.
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(body).toContain('binder: not built');
    }
  }, 60_000);

  test('a client past the limit gets 429 with Retry-After, counted per IPv6 /64; an API token is not counted', async () => {
    for (let i = 1; i <= 3; i++) {
      const { response } = await get(badges[i]!, `2001:db8:aa:bb::${i}`);
      expect(response.status).toBe(200);
    }
    const refused = await get(badges[4]!, '2001:db8:aa:bb:1:2:3:4');
    expect(refused.response.status).toBe(429);
    expect(Number(refused.response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.response.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(refused.response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(refused.body).toContain('binder: try later');

    const withToken = await get(badges[5]!, '2001:db8:aa:bb::9', {
      authorization: 'Bearer route-token',
    });
    expect(withToken.response.status).toBe(200);
    const wrongToken = await get(badges[6]!, '2001:db8:aa:bb::9', {
      authorization: 'Bearer not-a-token',
    });
    expect(wrongToken.response.status).toBe(403);
    // Another client is not held back by the first one's count.
    expect((await get(badges[7]!, '198.51.100.9')).response.status).toBe(200);
  }, 60_000);
});

describe('/health', () => {
  test('a flood of probes is answered from one run of the checks, and never refused', async () => {
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => get('/health', '203.0.113.8')),
    );
    console.log(`200 probes at once answered in ${Date.now() - started} ms`);
    expect(answers.map(({ response }) => response.status)).toEqual(Array(200).fill(200));
    const runs = new Set(
      answers.map(({ body }) => (JSON.parse(body) as { checkedAt: string }).checkedAt),
    );
    expect(runs.size).toBeLessThanOrEqual(2);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({
      ok: true,
      checks: [
        { service: 'Docker', ok: true },
        { service: 'Redis', ok: true },
        { service: 'Sandbox', ok: true },
      ],
    });
    // The answer is at most seconds old: a later probe sees a later run of the checks.
    const first = [...runs].sort().at(-1)!;
    await waitFor(
      async () => {
        const { body } = await get('/health', '203.0.113.8');
        return (JSON.parse(body) as { checkedAt: string }).checkedAt > first;
      },
      'a new run of the health checks',
      15_000,
    );
  }, 60_000);
});
