import { describe, expect, it } from '@jest/globals';
import { readYaml, UnsupportedYamlError } from '../../src/build/read-yaml.js';

describe('readYaml', () => {
  it('reads an environment.yml as conda writes it', () => {
    const text = [
      'name: analysis',
      'channels:',
      '  - conda-forge',
      '  - defaults',
      'dependencies:',
      '  - python=3.11',
      '  - numpy>=1.26  # arrays',
      '  - pip',
      '  - pip:',
      '    - -e .',
      '    - "requests==2.*"',
      "    - 'it''s'",
      'prefix: /opt/conda/envs/analysis',
      '',
    ].join('\n');
    expect(readYaml(text)).toEqual({
      name: 'analysis',
      channels: ['conda-forge', 'defaults'],
      dependencies: [
        'python=3.11',
        'numpy>=1.26',
        'pip',
        { pip: ['-e .', 'requests==2.*', "it's"] },
      ],
      prefix: '/opt/conda/envs/analysis',
    });
  });

  it('reads sequences at their key’s indentation, and compact mappings in sequences', () => {
    const text = ['dependencies:', '- pip:', '  - a', '  extra: b', '- c'].join('\n');
    expect(readYaml(text)).toEqual({ dependencies: [{ pip: ['a'], extra: 'b' }, 'c'] });
  });

  it('reads flow collections, also over several lines', () => {
    expect(readYaml('dependencies: [python=3.10, {pip: [-e ., "x, y"]}]')).toEqual({
      dependencies: ['python=3.10', { pip: ['-e .', 'x, y'] }],
    });
    expect(readYaml('a: [1,\n  2]\nb: {c: d}\n')).toEqual({ a: ['1', '2'], b: { c: 'd' } });
  });

  it('keeps # inside words and URLs, and drops comments', () => {
    expect(readYaml('- git+https://h/r.git#egg=r # why\n# all\n- a#b\n')).toEqual([
      'git+https://h/r.git#egg=r',
      'a#b',
    ]);
  });

  it('reads null, empty values, document markers and block scalars', () => {
    expect(readYaml('---\na:\nb: ~\nc: null\nd: |\n  line one\n  - not an item\n...\n')).toEqual({
      a: null,
      b: null,
      c: null,
      d: 'line one\n- not an item',
    });
    expect(readYaml('')).toBeNull();
    expect(readYaml('# nothing\n')).toBeNull();
  });

  it('reads quoted keys and escapes', () => {
    expect(readYaml('"dependencies": ["a\\tb", "\\u00e9"]\n')).toEqual({
      dependencies: ['a\tb', 'é'],
    });
  });

  it('skips anchors and tags, which change no value', () => {
    expect(readYaml('a: &x !!str value\nb: !!seq\n  - c\n')).toEqual({ a: 'value', b: ['c'] });
  });

  it('reads a megabyte of pathological text in linear time, so a repository cannot stall a build', () => {
    const started = Date.now();
    expect(readYaml(`a${' '.repeat(2 ** 20)}b`)).toBe(`a${' '.repeat(2 ** 20)}b`);
    expect(readYaml(`k${':x'.repeat(2 ** 19)}`)).toBe(`k${':x'.repeat(2 ** 19)}`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it.each([
    ['deep flow nesting', `a: ${'['.repeat(100_000)}`],
    ['deep block nesting', Array.from({ length: 200 }, (_, i) => `${' '.repeat(i)}-`).join('\n')],
  ])('refuses %s instead of overflowing the stack', (_name, text) => {
    expect(() => readYaml(text)).toThrow(UnsupportedYamlError);
  });

  it.each([
    ['an alias', 'a: &x 1\nb: *x\n'],
    ['a tab for indentation', 'a:\n\t- b\n'],
    ['an unclosed flow collection', 'a: [b, c\n'],
    ['a line that belongs nowhere', 'a: b\n- c\n'],
  ])('refuses %s with UnsupportedYamlError', (_name, text) => {
    expect(() => readYaml(text)).toThrow(UnsupportedYamlError);
  });
});
