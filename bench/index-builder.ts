import { randomBytes } from 'node:crypto';
import { Builder } from '../src/build/builder.js';
import { loadConfig } from '../src/config.js';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { createTestNetwork } from '../test/helpers/docker-network.js';
import { INDEX_PACKAGES } from '../test/helpers/fixture-packages.js';
import { startPackageIndex } from '../test/helpers/package-index.js';
import { ensureWheelhouse } from '../test/helpers/wheelhouse.js';

/**
 * A builder whose builds install the fixtures' packages (numpy, pandas, matplotlib: real wheels)
 * from a package index this process serves on a network of its own, as a live builder reaches
 * its index. `close` removes the images it built, the index and the network.
 */
export async function startIndexBuilder(): Promise<{
  builder: Builder;
  /** Remembers an image to remove at close. */
  built(imageName: string): void;
  close(): Promise<void>;
}> {
  const engine = new DockerEngine();
  const network = await createTestNetwork();
  const index = await startPackageIndex({
    host: network.gateway,
    packages: INDEX_PACKAGES,
    wheelhouse: await ensureWheelhouse(),
  });
  const builder = new Builder({
    engine,
    config: loadConfig({
      BINDERY_IMAGE_PREFIX: `bindery-bench/b${randomBytes(4).toString('hex')}-`,
      BINDERY_BUILD_NETWORK: network.name,
      PIP_INDEX_URL: index.url,
      PIP_TRUSTED_HOST: network.gateway,
    }),
  });
  const images: string[] = [];
  return {
    builder,
    built: (imageName) => images.push(imageName),
    async close() {
      for (const image of images) await engine.removeImage(image).catch(() => {});
      await index.close();
      await network.remove();
    },
  };
}
