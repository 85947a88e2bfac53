import { expect, it } from '@jest/globals';
import { compareStreamIds } from '../../src/queue/stream-followers.js';

it('orders stream ids by time, then by sequence, as numbers', () => {
  const sorted = [
    '0-0',
    '0-1',
    '9-0',
    '10-0',
    '1700000000000-2',
    '1700000000000-10',
    '1700000000001-0',
  ];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = 0; j < sorted.length; j++) {
      expect(Math.sign(compareStreamIds(sorted[i]!, sorted[j]!))).toBe(Math.sign(i - j));
    }
  }
});
