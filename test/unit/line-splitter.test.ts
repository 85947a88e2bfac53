import { describe, expect, it } from '@jest/globals';
import { LineSplitter } from '../../src/engine/line-splitter.js';

describe('LineSplitter', () => {
  it('passes lines on as their newlines arrive, across chunks', () => {
    const lines = new LineSplitter(100);
    expect(lines.push('Step 1/2 : RUN x\nhal')).toEqual(['Step 1/2 : RUN x']);
    expect(lines.push('f a line')).toEqual([]);
    expect(lines.push(' ends\n\nlast')).toEqual(['half a line ends', '']);
    expect(lines.flush()).toEqual(['last']);
    expect(lines.flush()).toEqual([]);
  });

  it('cuts output without newlines into pieces of the longest line, as it arrives', () => {
    const lines = new LineSplitter(4);
    expect(lines.push('yyy')).toEqual([]);
    expect(lines.push('yyyyyy')).toEqual(['yyyy', 'yyyy']);
    expect(lines.push('y\nabcdefghij\n')).toEqual(['yy', 'abcd', 'efgh', 'ij']);
  });

  it('keeps at most one line of text however much arrives without a newline', () => {
    const lines = new LineSplitter(8192);
    let passed = 0;
    for (let i = 0; i < 1000; i++) {
      passed += lines.push('y'.repeat(4096)).reduce((sum, line) => sum + line.length, 0);
    }
    const rest = lines.flush().join('');
    expect(passed + rest.length).toBe(4096 * 1000);
    expect(rest.length).toBeLessThan(8192);
  });
});
