import { describe, expect, test } from '@jest/globals';
import { formatBytes } from '../../src/format-bytes.js';

describe('formatBytes: one way to say how big, for limits and disk space in messages', () => {
  test.each([
    [0, '0 bytes'],
    [1023, '1023 bytes'],
    [512 * 1024, '512 KiB'],
    [2 ** 20, '1 MiB'],
    [2 ** 20 + 1, '1.0 MiB'],
    [3 * 2 ** 20, '3 MiB'],
    [1000 * 2 ** 20, '1000 MiB'],
    [1.5 * 2 ** 30, '1.5 GiB'],
    [2 * 2 ** 30, '2 GiB'],
    [5 * 2 ** 40, '5 TiB'],
  ])('%d bytes is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
