import { describe, expect, it } from '@jest/globals';
import { readTomlKeys } from '../../src/build/read-toml-keys.js';

describe('readTomlKeys', () => {
  it('reads the tables and strings of a pyproject.toml', () => {
    const { tables, strings } = readTomlKeys(
      [
        '[build-system]',
        'requires = ["setuptools>=61", "wheel"]',
        "build-backend = 'setuptools.build_meta'",
        '',
        '[project]',
        'name = "analysis"  # the name',
        'requires-python = ">=3.9"',
        'authors = [{ name = "A. Author", email = "a@example.org" }]',
        '',
        '[project.urls]',
        'Home = "https://example.org"',
      ].join('\n'),
    );
    expect([...tables]).toEqual(['build-system', 'project', 'project.urls']);
    expect(strings.get('project.requires-python')).toBe('>=3.9');
    expect(strings.get('build-system.build-backend')).toBe('setuptools.build_meta');
    expect(strings.get('project.urls.Home')).toBe('https://example.org');
  });

  it('reads a Pipfile’s [requires]', () => {
    const { strings } = readTomlKeys(
      '[[source]]\nurl = "https://pypi.org/simple"\n\n[requires]\npython_version = "3.10"\n',
    );
    expect(strings.get('requires.python_version')).toBe('3.10');
  });

  it('defines tables by dotted keys and inline tables', () => {
    const { tables, strings } = readTomlKeys(
      'project.name = "x"\ntool = { black = { a = "b" } }\n',
    );
    expect([...tables].sort()).toEqual(['project', 'tool', 'tool.black']);
    expect(strings.get('tool.black.a')).toBe('b');
  });

  it('takes no table name from inside strings, arrays or comments', () => {
    const { tables, strings } = readTomlKeys(
      [
        '# [commented]',
        'a = """',
        '[in.multi.line]',
        '"""',
        "b = '''",
        "[in.literal]'''",
        'c = [',
        '  "[in.array]",  # [in.comment]',
        '  [1, 2],',
        ']',
        'd = "[in.string]"',
      ].join('\n'),
    );
    expect([...tables]).toEqual([]);
    expect(strings.get('a')).toBe('[in.multi.line]\n');
    expect(strings.get('b')).toBe('[in.literal]');
  });

  it('reads escapes, quoted keys and line-ending backslashes of multi-line strings', () => {
    const { strings } = readTomlKeys(
      '"quoted key" = "tab\\there \\u00e9"\nplain = """line \\\n    joined"""\n',
    );
    expect(strings.get('quoted key')).toBe('tab\there é');
    expect(strings.get('plain')).toBe('line joined');
  });

  it('skips a line it cannot read and goes on', () => {
    const { tables } = readTomlKeys('x\n= broken\n[project]\nname = "ok"\n');
    expect([...tables]).toEqual(['project']);
  });

  it('skips arrays nested too deep instead of overflowing the stack', () => {
    const { tables } = readTomlKeys(`a = ${'['.repeat(100_000)}\n[project]\n`);
    expect([...tables]).toEqual(['project']);
  });

  it('reads numbers, booleans and dates without recording them', () => {
    const { strings } = readTomlKeys('a = 1\nb = true\nc = 1979-05-27T07:32:00Z\nd = "s"\n');
    expect([...strings]).toEqual([['d', 's']]);
  });
});
