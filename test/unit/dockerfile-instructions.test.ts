import { describe, expect, it } from '@jest/globals';
import {
  expandVariables,
  instructionWords,
  parseDockerfile,
} from '../../src/build/dockerfile-instructions.js';

describe('parseDockerfile', () => {
  it('joins continuation lines, skips comments inside them, and upper-cases keywords', () => {
    const text = 'from base AS one\n# a comment\nrun echo a \\\n  # inside\n  && echo b\nADD x y\n';
    expect(parseDockerfile(text)).toEqual([
      { keyword: 'FROM', args: 'base AS one', line: 1 },
      { keyword: 'RUN', args: 'echo a && echo b', line: 3 },
      { keyword: 'ADD', args: 'x y', line: 6 },
    ]);
  });

  it('honours the escape parser directive', () => {
    const text = '# escape=`\nFROM base\nADD `\n  http://h/x /y\n';
    expect(parseDockerfile(text).at(-1)).toEqual({
      keyword: 'ADD',
      args: 'http://h/x /y',
      line: 3,
    });
  });
});

describe('expandVariables', () => {
  const vars = new Map([
    ['URL', 'http://h'],
    ['EMPTY', ''],
  ]);
  it('expands $NAME, ${NAME} and the :- and :+ forms; unknown names are empty', () => {
    expect(expandVariables('$URL/a ${URL}/b ${NONE:-http://d}/c ${URL:+set} $NONE.', vars)).toBe(
      'http://h/a http://h/b http://d/c set .',
    );
    expect(expandVariables('${EMPTY:-fallback}', vars)).toBe('fallback');
  });
});

describe('instructionWords', () => {
  it('takes flags first, then words, in both forms', () => {
    expect(instructionWords('--from=0 --chown=1:1 a b')).toEqual({
      flags: ['--from=0', '--chown=1:1'],
      words: ['a', 'b'],
    });
    expect(instructionWords('["http://h/x", "/y"]')).toEqual({
      flags: [],
      words: ['http://h/x', '/y'],
    });
  });
});
