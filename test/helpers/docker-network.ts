import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface TestNetwork {
  name: string;
  /** The host's address on the network: where a server on the host is reachable from it. */
  gateway: string;
  /** The network's IPv4 subnet, a.b.c.d/n. */
  subnet: string;
  remove(): Promise<void>;
}

/**
 * A Docker bridge network of the test's own, for builds that must reach a server the test
 * runs on the host (bound to the gateway address) and nothing else of the test's.
 */
export async function createTestNetwork(): Promise<TestNetwork> {
  const name = `bindery-test-${randomBytes(4).toString('hex')}`;
  await exec('docker', [
    'network',
    'create',
    '--driver',
    'bridge',
    '--label',
    'bindery.kind=build',
    name,
  ]);
  const { stdout } = await exec('docker', [
    'network',
    'inspect',
    '-f',
    '{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}',
    name,
  ]);
  const [gateway = '', subnet = ''] = stdout.trim().split(' ');
  return {
    name,
    gateway,
    subnet,
    remove: async () => {
      await exec('docker', ['network', 'rm', name]).catch(() => {});
    },
  };
}
