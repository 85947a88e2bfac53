import { describe, expect, it } from '@jest/globals';
import { imageNameFor } from '../../src/build/image-name.js';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const SHA = 'a'.repeat(40);

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw. */
function configErrorFor(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('BINDERY_REGISTRY', () => {
  it('leaves image names as they were when unset', () => {
    const config = loadConfig({});
    expect(config.registry).toBeUndefined();
    expect(config.registryAuth).toBeUndefined();
    expect(config.imagePrefix).toBe('bindery/r2d-');
    expect(imageNameFor(config.imagePrefix, 'git-demo', SHA)).toMatch(
      /^bindery\/r2d-git-2ddemo-[0-9a-f]{6}:a{40}$/,
    );
  });

  it('names images under the registry, so every host knows where to pull them from', () => {
    const config = loadConfig({ BINDERY_REGISTRY: 'registry.internal:5000' });
    expect(config.registry).toBe('registry.internal:5000');
    expect(config.imagePrefix).toBe('registry.internal:5000/bindery/r2d-');
    expect(imageNameFor(config.imagePrefix, 'git-demo', SHA)).toMatch(
      /^registry\.internal:5000\/bindery\/r2d-git-2ddemo-[0-9a-f]{6}:a{40}$/,
    );
    // A prefix that names the registry already, as BinderHub's image_prefix does, is kept.
    expect(
      loadConfig({
        BINDERY_REGISTRY: 'registry.internal:5000',
        BINDERY_IMAGE_PREFIX: 'registry.internal:5000/binder/r2d-',
      }).imagePrefix,
    ).toBe('registry.internal:5000/binder/r2d-');
    // A namespace at the registry goes in the prefix.
    expect(
      loadConfig({ BINDERY_REGISTRY: 'ghcr.io', BINDERY_IMAGE_PREFIX: 'example/binder-' })
        .imagePrefix,
    ).toBe('ghcr.io/example/binder-');
  });

  it.each(['https://registry.internal', 'registry.internal/team', 'Registry.Internal', ':5000'])(
    'refuses %s with a sentence saying what it takes',
    (value) => {
      const error = configErrorFor({ BINDERY_REGISTRY: value });
      expect(error.message).toMatch(
        /BINDERY_REGISTRY: must be a registry host, optionally with a port .* without a scheme or path; a namespace goes in BINDERY_IMAGE_PREFIX/,
      );
    },
  );

  it('takes a sign-in as a user and password together, for the registry set', () => {
    const config = loadConfig({
      BINDERY_REGISTRY: '127.0.0.1:5000',
      BINDERY_REGISTRY_USERNAME: 'bindery',
      BINDERY_REGISTRY_PASSWORD: 'hunter2',
    });
    expect(config.registryAuth).toEqual({ username: 'bindery', password: 'hunter2' });
    expect(
      configErrorFor({ BINDERY_REGISTRY: '127.0.0.1:5000', BINDERY_REGISTRY_USERNAME: 'bindery' })
        .message,
    ).toMatch(/BINDERY_REGISTRY_USERNAME and BINDERY_REGISTRY_PASSWORD go together/);
    expect(
      configErrorFor({ BINDERY_REGISTRY_USERNAME: 'bindery', BINDERY_REGISTRY_PASSWORD: 'x' })
        .message,
    ).toMatch(/without BINDERY_REGISTRY: set the registry host/);
  });
});
