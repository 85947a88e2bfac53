import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { startSession, type StartedSession } from '../../src/sessions/start-session.js';
import {
  probe,
  probeFromHost,
  startNetnsTarget,
  type NetnsTarget,
} from '../helpers/netns-target.js';

const exec = promisify(execFile);
const config = loadConfig({
  BINDERY_IMAGE_PREFIX: `bindery-test/n${randomBytes(4).toString('hex')}-`,
});
const engine = new DockerEngine();
const PORTS = [80, 443, 22, 25, 5432, 6379, 8080];
let first: NetnsTarget | undefined;
let second: NetnsTarget | undefined;
let imageName: string | undefined;
let session: StartedSession | undefined;

beforeAll(async () => {
  first = await startNetnsTarget({
    name: 'bnd-t250',
    hostAddress: '10.250.0.1',
    address: '10.250.0.2',
    prefix: 24,
    ports: PORTS,
  });
  second = await startNetnsTarget({
    name: 'bnd-t251',
    hostAddress: '10.251.0.1',
    address: '10.251.0.2',
    prefix: 24,
    ports: PORTS,
  });
  const spec = parseSource(join(import.meta.dirname, '../fixtures/repos/default'));
  ({ imageName } = await new Builder({ engine, config }).build(spec));
  // No network given: the session is on Docker's default bridge, with no Bindery rules.
  session = await startSession({ engine, config, imageName, repoLabel: spec.repoLabel });
}, 300_000);

afterAll(async () => {
  if (session) await engine.removeContainer(session.container.id);
  if (imageName) await engine.removeImage(imageName);
  await first?.close();
  await second?.close();
}, 60_000);

describe('a target host in a network namespace of the test', () => {
  test('answers every port with its banner from the root namespace', async () => {
    for (const port of PORTS) {
      expect(await probeFromHost('10.250.0.2', port)).toEqual({
        connected: true,
        banner: `bindery-target ${port}\n`,
      });
    }
    expect(await probeFromHost('10.251.0.2', 80)).toEqual({
      connected: true,
      banner: 'bindery-target 80\n',
    });
    // A port the target does not listen on is refused, not silently dropped.
    expect(await probeFromHost('10.250.0.2', 81)).toMatchObject({
      connected: false,
      error: expect.stringContaining('ECONNREFUSED'),
    });
  }, 30_000);

  test('is reached from a session on the default bridge, through Docker’s masquerading', async () => {
    const container = session!.container.id;
    expect(await probe(container, '10.250.0.2', 8080)).toEqual({
      connected: true,
      banner: 'bindery-target 8080\n',
    });
    expect(await probe(container, '10.251.0.2', 443)).toEqual({
      connected: true,
      banner: 'bindery-target 443\n',
    });
    expect(await probe(container, '10.250.0.2', 81)).toEqual({
      connected: false,
      error: expect.stringMatching(/^ConnectionRefusedError/),
    });
    // Nothing answers at an address of the subnet that no one holds: the probe times out.
    expect(await probe(container, '10.250.0.3', 80, 1)).toEqual({
      connected: false,
      error: expect.stringMatching(/timed out|no route to host/i),
    });
  }, 60_000);

  test('close() removes the namespace and the veth pair, and may be called again', async () => {
    const target = await startNetnsTarget({
      name: 'bnd-t254',
      hostAddress: '10.254.0.1',
      address: '10.254.0.2',
      ports: [80],
    });
    expect((await probeFromHost('10.254.0.2', 80)).banner).toBe('bindery-target 80\n');
    await target.close();
    await target.close();
    const { stdout: namespaces } = await exec('ip', ['netns', 'list']);
    expect(namespaces).not.toMatch(/^bnd-t254\b/m);
    await expect(exec('ip', ['link', 'show', target.hostInterface])).rejects.toThrow();
    // (No connection attempt now: without the veth's route it would leave through the default
    // route, off this machine.)
    const { stdout: routes } = await exec('ip', ['route', 'show', '10.254.0.0/24']);
    expect(routes.trim()).toBe('');
  }, 30_000);
});
