import { describe, expect, test } from '@jest/globals';
import { formatDuration } from '../../src/format-duration.js';

describe('formatDuration: one way to say how long, for pages, check runs and the command line', () => {
  test.each([
    [0, '0 s'],
    [-5, '0 s'],
    [499, '0 s'],
    [42_400, '42 s'],
    [59_600, '1 min'],
    [65_000, '1 min 5 s'],
    [185_000, '3 min 5 s'],
    [600_000, '10 min'],
    [3_599_600, '1 h'],
    [3_725_000, '1 h 2 min'],
    [7_200_000, '2 h'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test.each([
    [0, '0.0 s'],
    [437, '0.4 s'],
    [4_350, '4.3 s'],
    [59_940, '59.9 s'],
    [59_960, '1 min'],
    [83_000, '1 min 23 s'],
  ])('%d ms in tenths is %s', (ms, text) => {
    expect(formatDuration(ms, { tenths: true })).toBe(text);
  });
});
