import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService, type RunningService } from '../../src/service.js';
import { freePort } from './free-port.js';
import { quietLog } from './capture-log.js';

const exec = promisify(execFile);

export interface TestService {
  /** `http://127.0.0.1:<port>`, the public URL too. */
  url: string;
  config: Config;
  /** The Redis key prefix, queue suffix and sessions' `bindery.store` label of this service. */
  namespace: string;
  /** Its images' name prefix. */
  prefix: string;
  /** Stops the service and removes its sessions, Redis keys, images and sandbox networks. */
  remove(): Promise<void>;
}

/**
 * The sandbox's session network of a test service, `bindery-test-<namespace>`: its bridge,
 * firewall chain and build networks are named after it, so no two test files share them.
 */
export const testSessionNetwork = (namespace: string) => `bindery-test-${namespace}`;

/**
 * Takes away the sandbox a service of `config` put in place, as `bindery sandbox --remove`
 * does: its firewall rules, its build networks and its session network. Only for a session
 * network of the test's own (never the default `bindery-sessions`, which others may use).
 */
export async function removeTestSandbox(config: Config): Promise<void> {
  if (config.sandbox.network === 'bindery-sessions') {
    throw new Error("removeTestSandbox: the default sandbox network is not a test's own");
  }
  const engine = new DockerEngine(config.docker);
  const sandbox = await prepareSandbox({ engine, config, log: quietLog });
  await sandbox.remove();
}

/**
 * A whole service (web, build worker, proxy), as `bindery serve` composes it, in this process
 * on a free loopback port, with a namespace, image prefix and sandbox network of its own so
 * test files never share keys, sessions, images, bridges or firewall chains, even when jest
 * runs them side by side. `env` adds to the settings every test service has; a
 * BINDERY_SESSION_NETWORK given there is the caller's to remove.
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
    BINDERY_SESSION_NETWORK: testSessionNetwork(namespace),
    ...env,
  });
  const ownSandbox = env.BINDERY_SESSION_NETWORK === undefined;
  let service: RunningService | undefined = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: quietLog,
  }).catch(async (error: unknown) => {
    if (ownSandbox) await removeTestSandbox(config).catch(() => {});
    throw error;
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
          // config.imagePrefix: the prefix after BINDERY_REGISTRY's host when that is set.
          ...(await redis.keys(`build:${config.imagePrefix}*`)),
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
      const ours = (image: string) => image.startsWith(config.imagePrefix);
      for (const image of stdout.split('\n').filter(ours)) {
        await engine.removeImage(image);
      }
      if (ownSandbox) await removeTestSandbox(config);
    },
  };
}
