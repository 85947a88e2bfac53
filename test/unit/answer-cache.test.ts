import { describe, expect, it } from '@jest/globals';
import { AnswerCache } from '../../src/web/answer-cache.js';

describe('AnswerCache', () => {
  it('serves an answer while it is fresh, and works it out again after', async () => {
    let now = 0;
    const cache = new AnswerCache<number>({ ttlMs: 5_000, now: () => now });
    let runs = 0;
    const work = async () => ++runs;
    expect(cache.peek('a')).toBeUndefined();
    expect(await cache.compute('a', work)).toBe(1);
    now = 4_999;
    expect(cache.peek('a')).toBe(1);
    now = 5_000;
    expect(cache.peek('a')).toBeUndefined();
    expect(await cache.compute('a', work)).toBe(2);
  });

  it('shares one piece of work among everyone asking while it runs', async () => {
    const cache = new AnswerCache<string>({ ttlMs: 1_000 });
    let runs = 0;
    let finish!: (value: string) => void;
    const work = () => {
      runs++;
      return new Promise<string>((resolve) => (finish = resolve));
    };
    const first = cache.compute('a', work);
    const second = cache.compute('a', work);
    const peeked = cache.peek('a');
    finish('done');
    expect(await Promise.all([first, second, peeked])).toEqual(['done', 'done', 'done']);
    expect(runs).toBe(1);
  });

  it('keeps at most maxEntries answers, dropping the oldest', async () => {
    const cache = new AnswerCache<number>({ ttlMs: 60_000, maxEntries: 2 });
    for (const [key, value] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const) {
      await cache.compute(key, async () => value);
    }
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.peek('b')).toBe(2);
    expect(cache.peek('c')).toBe(3);
  });

  it('with no time to live, shares only the work in flight', async () => {
    const cache = new AnswerCache<number>({ ttlMs: 0 });
    let runs = 0;
    const work = async () => ++runs;
    expect(await Promise.all([cache.compute('a', work), cache.compute('a', work)])).toEqual([1, 1]);
    expect(cache.peek('a')).toBeUndefined();
    expect(await cache.compute('a', work)).toBe(2);
  });

  it('keeps nothing of work that failed', async () => {
    const cache = new AnswerCache<number>({ ttlMs: 60_000 });
    await expect(cache.compute('a', async () => Promise.reject(new Error('no')))).rejects.toThrow(
      'no',
    );
    expect(cache.peek('a')).toBeUndefined();
  });
});
