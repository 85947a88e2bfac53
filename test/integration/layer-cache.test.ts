/**
 * A notebook-only change rebuilds only the repository's copy and what follows it: every layer
 * below it (the base image, the dependency files and their installs) is the same layer, by id.
 */
import { afterAll, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { createTestNetwork } from '../helpers/docker-network.js';
import { INDEX_PACKAGES } from '../helpers/fixture-packages.js';
import { startPackageIndex } from '../helpers/package-index.js';

const exec = promisify(execFile);
const prefix = `bindery-test/c${randomBytes(4).toString('hex')}-`;
const engine = new DockerEngine();
const images: string[] = [];
let dir: string | undefined;

const layersOf = async (image: string): Promise<string[]> =>
  JSON.parse(
    (await exec('docker', ['image', 'inspect', '-f', '{{json .RootFS.Layers}}', image])).stdout,
  ) as string[];

afterAll(async () => {
  for (const image of images) await engine.removeImage(image);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

test('a notebook-only change keeps every layer below the repository copy', async () => {
  const network = await createTestNetwork();
  const index = await startPackageIndex({ host: network.gateway, packages: INDEX_PACKAGES });
  try {
    const builder = new Builder({
      engine,
      config: loadConfig({
        BINDERY_IMAGE_PREFIX: prefix,
        BINDERY_BUILD_NETWORK: network.name,
        PIP_INDEX_URL: index.url,
        PIP_TRUSTED_HOST: network.gateway,
      }),
    });
    dir = await mkdtemp(join(tmpdir(), 'bindery-layers-'));
    await cp(join(import.meta.dirname, '../fixtures/repos/start-postbuild'), dir, {
      recursive: true,
    });
    await writeFile(join(dir, 'index.ipynb'), '{"cells": [], "nbformat": 4, "nbformat_minor": 5}');
    const first = await builder.build(parseSource(dir));
    images.push(first.imageName);
    await writeFile(
      join(dir, 'index.ipynb'),
      '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "x"}], "nbformat": 4, "nbformat_minor": 5}',
    );
    const second = await builder.build(parseSource(dir));
    images.push(second.imageName);

    expect(second.imageName).not.toBe(first.imageName);
    const [before, after] = [await layersOf(first.imageName), await layersOf(second.imageName)];
    const base = await layersOf(loadConfig({}).baseImage);
    // The last three layers are the copy, postBuild's and start's chmod; the copy differs.
    expect(after.length).toBe(before.length);
    expect(after.slice(0, -3)).toEqual(before.slice(0, -3));
    expect(after.at(-3)).not.toBe(before.at(-3));
    // And below them: the base image and the requirements' install, not just the base.
    expect(before.length - 3).toBeGreaterThan(base.length);
  } finally {
    await index.close();
    await network.remove();
  }
}, 300_000);
