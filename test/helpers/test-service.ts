import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { startService, type RunningService } from '../../src/service.js';
import { freePort } from './free-port.js';

const exec = promisify(execFile);

export interface TestService {
  /** `http://127.0.0.1:<port>`, the public URL too. */
  url: string;
  config: Config;
  /** The Redis key prefix, queue suffix and sessions' `bindery.store` label of this service. */
  namespace: string;
  /** Its images' name prefix. */
  prefix: string;
  /** Stops the service and removes its sessions, Redis keys and images. */
  remove(): Promise<void>;
}

/**
 * A whole service (web, build worker, proxy), as `bindery serve` composes it, in this process
 * on a free loopback port, with a namespace and image prefix of its own so test files never
 * share keys, sessions or images. `env` adds to the settings every test service has.
 */
export async function startTestService(
  name: string,
  env: Record<string, string> = {},
): Promise<TestService> {
  const namespace = `${name}${randomBytes(4).toString('hex')}`;
  const prefix = `bindery-test/${namespace}-`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    PORT: String(port),
    BINDERY_PUBLIC_URL: url,
    BINDERY_IMAGE_PREFIX: prefix,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    ...env,
  });
  let service: RunningService | undefined = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: { web: true, worker: true },
    log: () => {},
  });
  return {
    url,
    config,
    namespace,
    prefix,
    async remove() {
      await service?.close();
      service = undefined;
      const engine = new DockerEngine();
      for (const container of await engine.listSessions()) {
        if (container.labels['bindery.store'] === namespace) {
          await engine.removeContainer(container.id);
        }
      }
      const redis = new Redis(config.redisUrl);
      try {
        const keys = [
          ...(await redis.keys(`${namespace}:*`)),
          ...(await redis.keys(`bull:*${namespace}*`)),
          ...(await redis.keys(`build:${prefix}*`)),
        ];
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
      const { stdout } = await exec('docker', [
        'image',
        'ls',
        '--format',
        '{{.Repository}}:{{.Tag}}',
      ]);
      for (const image of stdout.split('\n').filter((image) => image.startsWith(prefix))) {
        await engine.removeImage(image);
      }
    },
  };
}
