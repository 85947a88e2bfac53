import { describe, expect, it } from '@jest/globals';
import { gitConfigEnv } from '../../src/repos/git.js';

describe('gitConfigEnv hands git configuration over through the environment', () => {
  it('sets nothing when there is no configuration', () => {
    expect(gitConfigEnv({})).toEqual({});
  });

  it('numbers each key and value from 0, in order, with the count', () => {
    expect(
      gitConfigEnv({
        'http.extraHeader': 'Authorization: Basic eC1hY2Nlc3MtdG9rZW46c2VjcmV0',
        'core.askPass': '',
      }),
    ).toEqual({
      GIT_CONFIG_COUNT: '2',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: 'Authorization: Basic eC1hY2Nlc3MtdG9rZW46c2VjcmV0',
      GIT_CONFIG_KEY_1: 'core.askPass',
      GIT_CONFIG_VALUE_1: '',
    });
  });

  it('refuses a NUL byte, which no environment can hold, without repeating the value', () => {
    const attempt = () => gitConfigEnv({ 'http.extraHeader': 'Authorization: secret\0' });
    expect(attempt).toThrow(/git config "http\.extraHeader" has an empty key or a NUL byte/);
    expect(attempt).not.toThrow(/secret/);
  });

  it('refuses an empty key, which git would reject with a less helpful error', () => {
    expect(() => gitConfigEnv({ '': 'x' })).toThrow(/empty key/);
  });
});
