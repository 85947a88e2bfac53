import { describe, expect, it } from '@jest/globals';
import { InvalidSpecifierError, specifierAllows } from '../../src/build/python-specifier.js';

describe('specifierAllows (as packaging: Version(v) in SpecifierSet(s))', () => {
  it.each([
    ['>=3.9', '3.11', true],
    ['>=3.9,<3.11', '3.11', false],
    ['>=3.9, <3.12', '3.11', true],
    ['>=3.8,', '3.11', true],
    ['', '3.11', true],
    ['==3.11', '3.11', true],
    ['==3.11.0', '3.11', true],
    ['==3.11.*', '3.11', true],
    ['==3.1.*', '3.11', false],
    ['!=3.11.*', '3.11', false],
    ['!=3.10', '3.11', true],
    ['~=3.10', '3.12', true],
    ['~=3.10.0', '3.11', false],
    ['~=3.10.0', '3.10', true],
    ['>3.11', '3.11', false],
    ['>=3.11.4', '3.11', false],
    ['<3.11.0rc1', '3.11', false],
    ['>3.11.0rc1', '3.11', true],
    ['>=3.11.dev0', '3.11', true],
    ['<=3.11.0.post1', '3.11', true],
    ['<3', '3.11', false],
    ['>= 3.10', '3.11', true],
    ['===3.11', '3.11', true],
  ])('%j allows %s: %s', (specifier, version, allowed) => {
    expect(specifierAllows(specifier, version)).toBe(allowed);
  });

  it.each(['three', '>=3.x', '=>3.9', '~=3', '>=3.*', '3.9'])('refuses %j', (specifier) => {
    expect(() => specifierAllows(specifier, '3.11')).toThrow(InvalidSpecifierError);
  });
});
