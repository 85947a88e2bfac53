import { describe, expect, it } from '@jest/globals';
import { jupyterUrl } from '../../src/engine/jupyter-url.js';

describe("jupyterUrl: where a session's Jupyter answers, from what the engine found", () => {
  it("is the container's address on its network at port 8888", () => {
    expect(jupyterUrl({ networkAddress: '10.41.0.7' })).toBe('http://10.41.0.7:8888');
  });

  it('is the published host address and port when there are both', () => {
    expect(
      jupyterUrl({ networkAddress: '172.17.0.3', published: { host: '127.0.0.1', port: 49153 } }),
    ).toBe('http://127.0.0.1:49153');
  });

  it('puts IPv6 addresses in brackets', () => {
    expect(jupyterUrl({ published: { host: '::1', port: 49153 } })).toBe('http://[::1]:49153');
    expect(jupyterUrl({ networkAddress: 'fd00::5' })).toBe('http://[fd00::5]:8888');
  });

  it('is undefined for a container with no address (stopped)', () => {
    expect(jupyterUrl({ networkAddress: '' })).toBeUndefined();
    expect(jupyterUrl({})).toBeUndefined();
  });
});
