import { describe, expect, it } from '@jest/globals';
import type { LayerProgress, RegistryAuth } from '../../src/engine/container-engine.js';
import { ImageStore, type PushEvent } from '../../src/engine/image-store.js';
import { UnavailableError } from '../../src/errors.js';

const REGISTRY = 'registry.internal:5000';
const SHARED = `${REGISTRY}/bindery/r2d-demo-abc123:${'a'.repeat(40)}`;
const AUTH = { username: 'bindery', password: 'hunter2' };

/**
 * An engine's images in memory: `local` on this host, `remote` in the registry; it records
 * what it was asked and with which credentials, and `down` makes the registry not answer.
 */
function engineOf(state: { local?: string[]; remote?: string[]; down?: boolean }) {
  const local = new Set(state.local);
  const remote = new Set(state.remote);
  const asked: { call: string; name: string; auth?: RegistryAuth }[] = [];
  const unreachable = () => new UnavailableError(`The registry ${REGISTRY} could not be asked.`);
  const engine = {
    imageExists: async (name: string) => local.has(name),
    registryHasImage: async (name: string, auth?: RegistryAuth) => {
      asked.push({ call: 'lookup', name, auth });
      if (state.down) throw unreachable();
      return remote.has(name);
    },
    pushImage: async (
      name: string,
      options: { auth?: RegistryAuth; onProgress?: (layers: LayerProgress) => void } = {},
    ) => {
      asked.push({ call: 'push', name, auth: options.auth });
      if (state.down) throw unreachable();
      remote.add(name);
    },
    pullImage: async (name: string, auth?: RegistryAuth) => {
      asked.push({ call: 'pull', name, auth });
      if (state.down) throw unreachable();
      local.add(name);
    },
  };
  return { engine, asked, local, remote };
}

describe('ImageStore without a registry', () => {
  it('knows only this host, asks no registry and pushes nothing', async () => {
    const { engine, asked } = engineOf({ local: ['bindery/r2d-x:1'] });
    const images = new ImageStore(engine, { registry: undefined, registryAuth: undefined });
    expect(await images.isBuilt('bindery/r2d-x:1')).toBe(true);
    expect(await images.isBuilt('bindery/r2d-x:2')).toBe(false);
    expect(await images.isPublished('bindery/r2d-x:2')).toBe(false);
    await images.push('bindery/r2d-x:1');
    await images.ensureLocal('bindery/r2d-x:2');
    await images.checkRegistry();
    expect(asked).toEqual([]);
  });
});

describe('ImageStore with BINDERY_REGISTRY', () => {
  const config = { registry: REGISTRY, registryAuth: AUTH };

  it('finds an image built on another host in the registry, with the sign-in', async () => {
    const { engine, asked } = engineOf({ remote: [SHARED] });
    const images = new ImageStore(engine, config);
    expect(await images.isBuilt(SHARED)).toBe(true);
    expect(asked).toEqual([{ call: 'lookup', name: SHARED, auth: AUTH }]);
  });

  it('answers from this host first, without asking the registry', async () => {
    const { engine, asked } = engineOf({ local: [SHARED] });
    expect(await new ImageStore(engine, config).isBuilt(SHARED)).toBe(true);
    expect(asked).toEqual([]);
  });

  it('counts an image only on this host as not published yet: its build pushes it', async () => {
    const { engine } = engineOf({ local: [SHARED] });
    expect(await new ImageStore(engine, config).isPublished(SHARED)).toBe(false);
  });

  it('pulls a missing image before a launch, and leaves one that is here', async () => {
    const { engine, asked, local } = engineOf({ remote: [SHARED] });
    const images = new ImageStore(engine, config);
    await images.ensureLocal(SHARED);
    expect(local.has(SHARED)).toBe(true);
    await images.ensureLocal(SHARED);
    expect(asked).toEqual([{ call: 'pull', name: SHARED, auth: AUTH }]);
  });

  it('never sends a name outside the registry to it (bindery build --image elsewhere)', async () => {
    const { engine, asked } = engineOf({});
    const images = new ImageStore(engine, config);
    expect(images.shared('docker.io/someone/else:1')).toBe(false);
    expect(images.shared(`${REGISTRY}.evil.example/x:1`)).toBe(false);
    await images.push('docker.io/someone/else:1');
    expect(await images.isBuilt('docker.io/someone/else:1')).toBe(false);
    expect(asked).toEqual([]);
  });

  it('reports a push as BinderHub does: layers every 1.5 s, then "Successfully pushed"', async () => {
    const { engine } = engineOf({});
    let clock = 0;
    // Docker reports at 0.5, 1, 2, 2.5 and 4 s, and the last layer is done at 4.1 s.
    const reports: [number, string][] = [
      [500, 'Pushing'],
      [1_000, 'Pushing'],
      [2_000, 'Pushing'],
      [2_500, 'Pushing'],
      [4_000, 'Pushing'],
      [4_100, 'Pushed'],
    ];
    const timed = {
      ...engine,
      pushImage: async (
        name: string,
        options: { auth?: RegistryAuth; onProgress?: (layers: LayerProgress) => void } = {},
      ) => {
        for (const [at, state] of reports) {
          clock = at;
          options.onProgress?.({ aaa: state, bbb: { current: at, total: 5_000 } });
        }
        return engine.pushImage(name, { auth: options.auth });
      },
    };
    const events: PushEvent[] = [];
    await new ImageStore(timed, config, () => clock).push(SHARED, (event) => events.push(event));
    expect(events.map((event) => event.message)).toEqual([
      `Pushing ${SHARED} to ${REGISTRY}\n`,
      'Pushing image\n',
      'Pushing image\n',
      `Successfully pushed ${SHARED}\n`,
    ]);
    expect(events.every((event) => event.phase === 'pushing')).toBe(true);
    expect(events[1]!.progress).toEqual({ aaa: 'Pushing', bbb: { current: 2_000, total: 5_000 } });
    expect(events[2]!.progress).toEqual({ aaa: 'Pushing', bbb: { current: 4_000, total: 5_000 } });
    expect(events[3]!.progress).toEqual({ aaa: 'Pushed', bbb: { current: 4_100, total: 5_000 } });
  });

  it('asks for a name under the image prefix to see that the registry answers', async () => {
    const { engine, asked } = engineOf({});
    const prefix = `${REGISTRY}/bindery/r2d-`;
    await new ImageStore(engine, { ...config, imagePrefix: prefix }).checkRegistry();
    expect(asked).toEqual([{ call: 'lookup', name: `${prefix}health-check:absent`, auth: AUTH }]);
  });

  it('says which registry does not answer, for /health and for a launch', async () => {
    const { engine } = engineOf({ down: true });
    const images = new ImageStore(engine, config);
    await expect(images.checkRegistry()).rejects.toThrow(`The registry ${REGISTRY}`);
    await expect(images.isBuilt(SHARED)).rejects.toThrow(UnavailableError);
    await expect(images.ensureLocal(SHARED)).rejects.toThrow(`The registry ${REGISTRY}`);
  });
});
