/**
 * A build's network goes when the build ends, however it ends: a failing step, the build time
 * limit, or the worker dying (then the next start removes it). Real Docker, real firewall
 * rules, on a sandbox network of this file's own.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { BuildError } from '../../src/errors.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { BUILD_NETWORK_LABEL } from '../../src/sandbox/build-networks.js';
import { prepareSandbox, type PreparedSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { captureLog, quietLog } from '../helpers/capture-log.js';

const exec = promisify(execFile);
const run = randomBytes(3).toString('hex');
const env = {
  BINDERY_SESSION_NETWORK: `bindery-bl-${run}`,
  BINDERY_IMAGE_PREFIX: `bindery-test/bl${run}-`,
};
const engine = new DockerEngine();
let sandbox: PreparedSandbox;
let dir: string;

/** The names of this file's build networks that exist now. */
async function buildNetworks(): Promise<string[]> {
  const found = await engine.listNetworks(`${BUILD_NETWORK_LABEL}=${sandbox.build.prefix}`);
  return found.map((network) => network.name);
}

const arpRules = async () => (await exec('ebtables', ['-L', 'FORWARD'])).stdout;

beforeAll(async () => {
  sandbox = await prepareSandbox({ engine, config: loadConfig(env), log: quietLog });
  dir = await mkdtemp(join(tmpdir(), 'bindery-leftovers-'));
}, 60_000);

afterAll(async () => {
  await sandbox?.remove();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('a build network is removed, with its ARP rule', () => {
  /** Builds a Dockerfile whose step runs `step`, noting the network it was given. */
  const buildWith = async (step: string, settings: Record<string, string> = {}) => {
    const repo = join(dir, randomBytes(4).toString('hex'));
    await exec('mkdir', [repo]);
    await writeFile(
      join(repo, 'Dockerfile'),
      `ARG BINDERY_BASE_IMAGE\nFROM \${BINDERY_BASE_IMAGE}\nRUN ${step}\n`,
    );
    const given: { network: string; subnet: string }[] = [];
    const builder = new Builder({
      engine,
      config: loadConfig({ ...env, ...settings }),
      buildNetwork: async () => {
        const network = await sandbox.build.acquire();
        given.push(network);
        return network;
      },
    });
    const outcome = await builder.build(parseSource(repo)).catch((error: Error) => error);
    return { outcome, given };
  };

  test('when a step fails', async () => {
    const { outcome, given } = await buildWith('exit 3');
    expect(outcome).toBeInstanceOf(BuildError);
    expect(given).toHaveLength(1);
    expect(await buildNetworks()).toEqual([]);
    expect(await arpRules()).not.toContain(given[0]!.subnet);
    expect(sandbox.build.inFlight()).toEqual([]);
  }, 120_000);

  test('when the build time limit stops it', async () => {
    const { outcome, given } = await buildWith('sleep 120', { BINDERY_BUILD_TIMEOUT: '5' });
    expect(outcome).toBeInstanceOf(BuildError);
    expect((outcome as Error).message).toContain('took longer than 5 s');
    expect(given).toHaveLength(1);
    expect(await buildNetworks()).toEqual([]);
    expect(await arpRules()).not.toContain(given[0]!.subnet);
  }, 120_000);

  test('when its worker dies: the next start removes it', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, '../helpers/build-network-process.ts'),
        env.BINDERY_SESSION_NETWORK,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const line = String((await lines.next()).value ?? '');
    const [network = '', subnet = ''] = line.split(' ');
    expect(network).toMatch(new RegExp(`^${sandbox.build.prefix}-[0-9a-f]{8}$`));
    // A start while that worker lives leaves its network alone.
    await prepareSandbox({ engine, config: loadConfig(env), log: quietLog });
    expect(await buildNetworks()).toEqual([network]);
    child.kill('SIGKILL');
    await exited;
    expect(await buildNetworks()).toEqual([network]);
    expect(await arpRules()).toContain(subnet);
    const { log, entries } = captureLog();
    await prepareSandbox({ engine, config: loadConfig(env), log });
    expect(await buildNetworks()).toEqual([]);
    expect(await arpRules()).not.toContain(subnet);
    expect(entries().map(({ msg }) => msg)).toContain(
      `removed build networks left by a stopped worker: ${network}`,
    );
  }, 120_000);
});
