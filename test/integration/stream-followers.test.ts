import { afterAll, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { StreamFollowers, type StreamEntry } from '../../src/queue/stream-followers.js';

const run = randomBytes(4).toString('hex');
const key = (name: string) => `streamfollowers${run}:${name}`;
const connectionName = `streamfollowers${run}`;
// The followers' connection is a duplicate of this one, and keeps its name.
const redis = new Redis({ connectionName });
const admin = new Redis();

afterAll(async () => {
  const keys = await admin.keys(`streamfollowers${run}:*`);
  if (keys.length > 0) await admin.del(...keys);
  redis.disconnect();
  admin.disconnect();
});

const ids = (entries: StreamEntry[]) => entries.map(([, fields]) => fields[1]);
const connections = async () =>
  ((await admin.client('LIST')) as string)
    .split('\n')
    .filter((line) => line.includes(` name=${connectionName} `)).length;

/** Takes `count` entries of `name` after `from`, then stops following. */
async function take(followers: StreamFollowers, name: string, count: number, from = '0-0') {
  const taken: StreamEntry[] = [];
  if (count === 0) return taken;
  for await (const entry of followers.follow(key(name), from)) {
    taken.push(entry);
    if (taken.length === count) break;
  }
  return taken;
}

test('followers at different places in one stream each get every entry after their own, in order', async () => {
  const followers = new StreamFollowers(redis, { blockMs: 30_000, count: 2 });
  for (let i = 0; i < 5; i++) await admin.xadd(key('shared'), '*', 'n', String(i));
  const [third] = (await admin.xrange(key('shared'), '-', '+')).slice(2, 3);
  const early = take(followers, 'shared', 8);
  const late = take(followers, 'shared', 5, third![0]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (let i = 5; i < 8; i++) await admin.xadd(key('shared'), '*', 'n', String(i));
  expect(ids(await early)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  expect(ids(await late)).toEqual(['3', '4', '5', '6', '7']);
}, 30_000);

test('a follower of a new stream is served at once, not after the read under way times out', async () => {
  const followers = new StreamFollowers(redis, { blockMs: 30_000 });
  const quiet = new AbortController();
  const waiting = (async () => {
    for await (const entry of followers.follow(key('quiet'), '0-0', quiet.signal)) void entry;
  })();
  // The read over `quiet` alone is under way and would block for 30 s.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await admin.xadd(key('busy'), '*', 'n', 'first');
  const started = Date.now();
  expect(ids(await take(followers, 'busy', 1))).toEqual(['first']);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(await connections()).toBe(2);
  quiet.abort();
  await waiting;
  // The last follower gone, the shared connection closes too.
  const closing = Date.now();
  while ((await connections()) > 1 && Date.now() - closing < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(await connections()).toBe(1);
}, 30_000);

test('an aborted follower ends without an entry', async () => {
  const followers = new StreamFollowers(redis, { blockMs: 30_000 });
  const leaving = new AbortController();
  const taken: StreamEntry[] = [];
  const following = (async () => {
    for await (const entry of followers.follow(key('never'), '0-0', leaving.signal))
      taken.push(entry);
  })();
  await new Promise((resolve) => setTimeout(resolve, 100));
  leaving.abort();
  await following;
  expect(taken).toEqual([]);
}, 30_000);
