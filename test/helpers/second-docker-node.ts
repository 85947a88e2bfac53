import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Iptables } from '../../src/sandbox/firewall.js';
import { waitFor } from './wait-for.js';

const exec = promisify(execFile);

/** A TCP forwarder: 127.0.0.1:<argv[1]> to <argv[2]> (host:port); prints a line once listening. */
const FORWARDER = `
const net = require('node:net');
const [port, target] = process.argv.slice(1);
const [host, targetPort] = target.split(':');
net
  .createServer((socket) => {
    const upstream = net.connect(Number(targetPort), host);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  })
  .listen(Number(port), '127.0.0.1', () => console.log('ready'));
`;
const ignore = () => {};

export interface SecondNode {
  /** `unix:///run/<name>/docker.sock`: its DOCKER_HOST. */
  dockerHost: string;
  /** Its address on the link to the host. */
  address: string;
  /** The host's address on that link. */
  hostAddress: string;
  /** iptables, ip6tables and ebtables run inside its network namespace. */
  iptables: Iptables;
  ip6tables: Iptables;
  ebtables: Iptables;
  /** `docker` against it. */
  docker(...args: string[]): Promise<string>;
  /**
   * Forwards TCP connections to the node's own loopback port `port` to `target` (`host:port`),
   * from inside its namespace: what lets its daemon reach a registry on the host as `127.0.0.1`,
   * the one address Docker speaks plain HTTP to.
   */
  forwardLoopback(port: number, target: string): Promise<void>;
  /** Stops its dockerd and removes its namespace, link, data root and run directory. */
  close(): Promise<void>;
}

/**
 * A second Docker engine on this machine, as another host would run one: its own network
 * namespace (a veth to the host, `hostAddress` ↔ `address`, routed through the host), data root,
 * exec root, socket and cgroup parent, no default bridge. dockerd is started with `nsenter
 * --net` rather than `ip netns exec`, which remounts /sys and hides the cgroup mounts dockerd
 * needs ("Devices cgroup isn't mounted").
 */
export async function startSecondNode(options: {
  name: string;
  hostAddress: string;
  address: string;
}): Promise<SecondNode> {
  const { name, hostAddress, address } = options;
  const netns = `/var/run/netns/${name}`;
  const run = `/run/${name}`;
  const dataRoot = `/var/lib/${name}`;
  const dockerHost = `unix://${run}/docker.sock`;
  const ip = (...args: string[]) => exec('ip', args);
  const inNetns = (command: string, args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const child = execFile(
        'nsenter',
        [`--net=${netns}`, command, ...args],
        (error, stdout, stderr) =>
          error ? reject(new Error(stderr.trim() || error.message)) : resolve(stdout),
      );
      // A command that reads nothing may exit before its (empty) input is written.
      child.stdin!.on('error', ignore);
      child.stdin!.end(input ?? '');
    });
  let dockerd: ChildProcess | undefined;
  const forwarders: ChildProcess[] = [];
  const close = async () => {
    for (const forwarder of forwarders) forwarder.kill();
    if (dockerd?.pid && dockerd.exitCode === null) {
      dockerd.kill('SIGTERM');
      await waitFor(
        () => dockerd!.exitCode !== null || dockerd!.signalCode !== null,
        'dockerd to stop',
        30_000,
      ).catch(() => dockerd!.kill('SIGKILL'));
    }
    await ip('netns', 'del', name).catch(ignore);
    await ip('link', 'del', `${name}-h`).catch(ignore);
    await rm(run, { recursive: true, force: true }).catch(ignore);
    await rm(dataRoot, { recursive: true, force: true }).catch(ignore);
  };
  await close();
  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', `${name}-h`, 'type', 'veth', 'peer', 'name', `${name}-p`);
    await ip('link', 'set', `${name}-p`, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/24`, 'dev', `${name}-h`);
    await ip('link', 'set', `${name}-h`, 'up');
    await inNetns('ip', ['addr', 'add', `${address}/24`, 'dev', `${name}-p`]);
    await inNetns('ip', ['link', 'set', `${name}-p`, 'up']);
    await inNetns('ip', ['link', 'set', 'lo', 'up']);
    await inNetns('ip', ['route', 'add', 'default', 'via', hostAddress]);
    await mkdir(run, { recursive: true });
    await writeFile(`${run}/daemon.json`, '{}\n');
    dockerd = spawn(
      'nsenter',
      [
        `--net=${netns}`,
        'dockerd',
        '--data-root',
        dataRoot,
        '--exec-root',
        `${run}/exec`,
        '-H',
        dockerHost,
        '--pidfile',
        `${run}/docker.pid`,
        '--bridge',
        'none',
        '--cgroup-parent',
        name,
        '--config-file',
        `${run}/daemon.json`,
      ],
      { stdio: 'ignore' },
    );
    const docker = async (...args: string[]) =>
      (
        await exec('docker', ['-H', dockerHost, ...args], { maxBuffer: 64 * 2 ** 20 })
      ).stdout.trim();
    await waitFor(
      () =>
        docker('info', '--format', '{{.ServerVersion}}').then(
          () => true,
          () => false,
        ),
      'the second dockerd to answer',
      60_000,
    );
    return {
      dockerHost,
      address,
      hostAddress,
      iptables: (args, input) =>
        input === undefined
          ? inNetns('iptables', ['-w', ...args])
          : inNetns('iptables-restore', ['-w', ...args], input),
      ip6tables: (args) => inNetns('ip6tables', ['-w', ...args]),
      ebtables: (args) =>
        inNetns('ebtables', args[0] === '-C' ? ['--check', ...args.slice(1)] : args),
      docker,
      async forwardLoopback(port, target) {
        const forwarder = spawn(
          'nsenter',
          [`--net=${netns}`, process.execPath, '-e', FORWARDER, String(port), target],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        forwarders.push(forwarder);
        await new Promise<void>((resolve, reject) => {
          forwarder.stdout!.once('data', () => resolve());
          forwarder.once('exit', (code) => reject(new Error(`the forwarder exited (${code})`)));
        });
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
