/**
 * Build steps run on a network of their own, never on the sessions' bridge, behind the same
 * egress rules; IPv6 is off for both. Proven through a whole service (web + worker): a real
 * session is launched, then a repository whose Dockerfile runs a hostile step as root (Docker
 * gives build containers NET_RAW) is built through /build. The step probes egress, forges an
 * IPv6 datagram to the host by hand, and sends gratuitous ARP claiming the session's address
 * and its own gateway's, while this test watches the host's neighbour entry, the session's
 * proxied api/status, and the gateway entry of another container on the build network.
 * Every address involved is this test's own: its namespaces, its networks, its containers.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import { bridgeFor, buildNetworkFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService, type RunningService } from '../../src/service.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startNetnsTarget, type NetnsTarget } from '../helpers/netns-target.js';

const exec = promisify(execFile);
const run = randomBytes(3).toString('hex');
const namespace = `bn${run}`;
const prefix = `bindery-test/n${run}-`;
const ALLOWED = { name: 'bnd-b246', hostAddress: '10.246.0.1', address: '10.246.0.2' };
const FORBIDDEN = { name: 'bnd-b247', hostAddress: '10.247.0.1', address: '10.247.0.2' };
const TARGET6 = { host: 'fd46:246::1', address: 'fd46:246::2' };
const SPOOF_SECONDS = 20;
const engine = new DockerEngine();
const redis = new Redis();

let allowed: NetnsTarget;
let forbidden: NetnsTarget;
let git: GitServer;
let config: Config;
let service: RunningService;
let session: { name: string; url: string; token: string; ip: string; mac: string };
let udp6: Socket;
const datagrams: string[] = [];

const escaped = (url: string) => encodeURIComponent(url);
const logOf = (events: StreamEvent[]) =>
  events
    .filter((event) => event.phase === 'building')
    .map((event) => String(event.message))
    .join('');

const ipv4 = (address: string) =>
  address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);

/** Whether an IPv4 address lies in a.b.c.d/n. */
function inSubnet(address: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const block = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / block) === Math.floor(ipv4(base) / block);
}

async function neighbourOf(ip: string, bridge: string): Promise<string | undefined> {
  const { stdout } = await exec('ip', ['-j', 'neigh', 'show', ip, 'dev', bridge]);
  return (JSON.parse(stdout || '[]') as { lladdr?: string }[])[0]?.lladdr;
}

async function statusOf(url: string): Promise<number | string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return (error as Error).name;
  }
}

beforeAll(async () => {
  allowed = await startNetnsTarget({ ...ALLOWED, ports: [80, 22] });
  forbidden = await startNetnsTarget({ ...FORBIDDEN, ports: [80, 22] });
  // The allowed target has an IPv6 address too, routed from the host like its IPv4 one.
  await exec('ip', ['addr', 'add', `${TARGET6.host}/64`, 'dev', allowed.hostInterface, 'nodad']);
  await exec('ip', [
    '-n',
    ALLOWED.name,
    'addr',
    'add',
    `${TARGET6.address}/64`,
    'dev',
    `${ALLOWED.name}-n`,
    'nodad',
  ]);

  // What a forged IPv6 datagram would reach: a service of the host's on every IPv6 address.
  udp6 = createSocket({ type: 'udp6', ipv6Only: true });
  udp6.on('message', (message) => datagrams.push(message.toString()));
  await new Promise<void>((resolve) => udp6.bind(0, '::', resolve));

  git = await startGitServer();
  const port = await freePort();
  config = loadConfig({
    PORT: String(port),
    BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BINDERY_IMAGE_PREFIX: prefix,
    BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
    BINDERY_API_TOKENS: 'test-token',
    BINDERY_SESSION_NETWORK: `bindery-bn-${run}`,
    BINDERY_EGRESS_ALLOW_CIDRS: '10.246.0.0/24',
  });
  service = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: { web: true, worker: true },
    log: () => {},
  });

  const repo = await git.publish('session', join(import.meta.dirname, '../fixtures/repos/default'));
  const { events } = await readEventStream(`${service.url}/build/git/${escaped(repo.url)}/HEAD`);
  const ready = events.at(-1)!;
  if (ready.phase !== 'ready')
    throw new Error(`the session did not launch: ${JSON.stringify(ready)}`);
  const name = /\/user\/([^/]+)\//.exec(String(ready.url))![1]!;
  const { stdout } = await exec('docker', [
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}}{{end}}',
    name,
  ]);
  const [ip = '', mac = ''] = stdout.trim().split(' ');
  session = { name, url: String(ready.url), token: String(ready.token), ip, mac };
}, 600_000);

afterAll(async () => {
  await service?.close();
  for (const container of await engine.listSessions()) {
    if (container.labels['bindery.store'] === namespace) await engine.removeContainer(container.id);
  }
  if (config) {
    const sandbox = await prepareSandbox({ engine, config, log: () => {} });
    await sandbox.remove();
  }
  const keys = [
    ...(await redis.keys(`${namespace}:*`)),
    ...(await redis.keys(`bull:*${namespace}*`)),
    ...(await redis.keys(`build:${prefix}*`)),
  ];
  if (keys.length > 0) await redis.del(...keys);
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(image);
  }
  redis.disconnect();
  udp6?.close();
  await git?.close();
  await allowed?.close();
  await forbidden?.close();
}, 120_000);

describe('a hostile build step, run as root through the service', () => {
  let log = '';
  const samples: { lladdr: string | undefined; status: number | string }[] = [];
  /** What another container on the build network (another build) holds for its gateway. */
  const victimSamples: (string | undefined)[] = [];
  let victim = '';
  let gateway = { address: '', mac: '' };
  const token = randomBytes(8).toString('hex');

  beforeAll(async () => {
    const fixture = join(import.meta.dirname, '../fixtures/repos/hostile-build');
    const repo = await git.publish('hostile', fixture);
    const sha = await git.commit('hostile', {
      'target.json': JSON.stringify({
        session_ip: session.ip,
        seconds: SPOOF_SECONDS,
        egress: [
          [ALLOWED.address, 80],
          [ALLOWED.address, 22],
          [FORBIDDEN.address, 80],
        ],
        egress6: [[TARGET6.address, 80]],
        udp_port: (udp6.address() as { port: number }).port,
        token,
      }),
    });
    // Another build on the build network, sending to its gateway as a download would.
    const buildNetwork = buildNetworkFor(config.sandbox.network);
    const { stdout: gatewayAddress } = await exec('docker', [
      'network',
      'inspect',
      '-f',
      '{{range .IPAM.Config}}{{.Gateway}}{{end}}',
      buildNetwork,
    ]);
    gateway = {
      address: gatewayAddress.trim(),
      mac: (await readFile(`/sys/class/net/${bridgeFor(buildNetwork)}/address`, 'utf8')).trim(),
    };
    victim = (
      await exec('docker', [
        'run',
        '-d',
        '--rm',
        '--label',
        'bindery.kind=build',
        '--network',
        buildNetwork,
        config.baseImage,
        'python3',
        '-c',
        'import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nwhile True:\n' +
          `    s.sendto(b"x", ("${gateway.address}", 9)); time.sleep(0.2)`,
      ])
    ).stdout.trim();
    const victimGateway = async () => {
      const { stdout: table } = await exec('docker', ['exec', victim, 'cat', '/proc/net/arp']);
      const entry = table.split('\n').find((line) => line.startsWith(`${gateway.address} `));
      return entry?.split(/\s+/)[3];
    };
    // Sampling starts once the other build has resolved its gateway.
    for (let i = 0; i < 50 && (await victimGateway()) !== gateway.mac; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    victimSamples.push(await victimGateway());
    const statusUrl = `${session.url}api/status?token=${session.token}`;
    const bridge = bridgeFor(config.sandbox.network);
    // The proxy has talked to the session: the host has a neighbour entry to watch.
    samples.push({
      lladdr: await neighbourOf(session.ip, bridge),
      status: await statusOf(statusUrl),
    });
    let done = false;
    const build = readEventStream(
      `${service.url}/build/git/${escaped(repo.url)}/${sha}?build_only=true`,
      { headers: { authorization: 'Bearer test-token' } },
    ).finally(() => (done = true));
    while (!done) {
      samples.push({
        lladdr: await neighbourOf(session.ip, bridge),
        status: await statusOf(statusUrl),
      });
      victimSamples.push(await victimGateway());
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const { events } = await build;
    log = logOf(events);
    if (events.at(-1)?.phase !== 'ready') {
      throw new Error(`the hostile build did not finish: ${JSON.stringify(events.at(-1))}\n${log}`);
    }
  }, 600_000);

  afterAll(async () => {
    if (victim) await exec('docker', ['rm', '-f', victim]).catch(() => {});
  });

  test('ran, and sent its forged frames', () => {
    expect(log).toMatch(/arp frames sent [1-9]\d+/);
    expect(log).toContain('ipv6 frames sent 5');
  });

  test("runs on a network of its own, not on the sessions' subnet", async () => {
    const address = /build address (\S+)/.exec(log)?.[1] ?? '';
    const { stdout } = await exec('docker', [
      'network',
      'inspect',
      '-f',
      '{{range .IPAM.Config}}{{.Subnet}}{{end}}',
      config.sandbox.network,
    ]);
    const subnet = stdout.trim();
    expect({ address, subnet, onSessionSubnet: inSubnet(address, subnet) }).toEqual({
      address: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/),
      subnet: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
      onSessionSubnet: false,
    });
  });

  test("leaves the host's neighbour entry for the session and its proxied api/status unchanged", () => {
    expect(samples.length).toBeGreaterThan(SPOOF_SECONDS);
    const changed = samples.filter((s) => s.lladdr !== session.mac || s.status !== 200);
    expect({ mac: session.mac, changed }).toEqual({ mac: session.mac, changed: [] });
  });

  test("cannot claim the gateway's address towards another build on its network", () => {
    expect(victimSamples.length).toBeGreaterThan(SPOOF_SECONDS);
    expect(victimSamples[0]).toBe(gateway.mac);
    // An entry being resolved again reads 00:00:00:00:00:00; any other address is the attacker's.
    const changed = victimSamples.filter(
      (mac) => mac !== gateway.mac && mac !== '00:00:00:00:00:00',
    );
    expect({ gateway: gateway.mac, changed }).toEqual({ gateway: gateway.mac, changed: [] });
  });

  test('reaches the allowed network on port 80, and neither port 22 nor an unlisted network', () => {
    expect(log.match(/^egress .*$/gm)).toEqual([
      `egress ${ALLOWED.address} 80 open`,
      `egress ${ALLOWED.address} 22 closed`,
      `egress ${FORBIDDEN.address} 80 closed`,
    ]);
  });

  test('opens no IPv6 connection, and its hand-made IPv6 datagram reaches no host service', () => {
    expect(log.match(/^egress6 .*$/gm)).toEqual([`egress6 ${TARGET6.address} 80 closed`]);
    expect(datagrams.filter((datagram) => datagram === token)).toEqual([]);
  });
});

describe('IPv6 for sessions, and the rules in /health', () => {
  test('a session opens no IPv6 connection, and cannot write frames by hand', async () => {
    const { stdout } = await exec('docker', [
      'exec',
      session.name,
      'python3',
      '-c',
      [
        'import socket',
        'try:',
        `    socket.create_connection(("${TARGET6.address}", 80), timeout=3).close(); print("ipv6 open")`,
        'except OSError as error: print("ipv6 closed")',
        'try:',
        '    socket.socket(socket.AF_PACKET, socket.SOCK_RAW); print("raw allowed")',
        'except OSError as error: print("raw refused")',
        'print("addresses", len(open("/proc/net/if_inet6").read().split()))',
      ].join('\n'),
    ]);
    expect(stdout.trim().split('\n')).toEqual(['ipv6 closed', 'raw refused', 'addresses 0']);
  }, 60_000);

  test('neither network has IPv6, and the host drops IPv6 from both bridges', async () => {
    const networks = [config.sandbox.network, buildNetworkFor(config.sandbox.network)];
    const { stdout } = await exec('docker', [
      'network',
      'inspect',
      '-f',
      '{{.Name}} {{.EnableIPv6}} {{len .IPAM.Config}}',
      ...networks,
    ]);
    expect(stdout.trim().split('\n')).toEqual(networks.map((name) => `${name} false 1`));
    const input = (await exec('ip6tables', ['-S', 'INPUT'])).stdout;
    const forward = (await exec('ip6tables', ['-S', 'FORWARD'])).stdout;
    for (const bridge of networks.map(bridgeFor)) {
      expect(input).toContain(`-A INPUT -i ${bridge} -j DROP`);
      expect(forward).toContain(`-A FORWARD -i ${bridge} -j DROP`);
      expect(forward).toContain(`-A FORWARD -o ${bridge} -j DROP`);
    }
  });

  test("/health reports the build network's rules: a missing one makes it fail, naming it", async () => {
    const healthy = await fetch(`${service.url}/health`);
    expect(healthy.status).toBe(200);
    const network = buildNetworkFor(config.sandbox.network);
    const bridge = bridgeFor(network);
    await exec('iptables', ['-D', 'DOCKER-USER', '-i', bridge, '-j', egressChain({ bridge })]);
    await exec('ip6tables', ['-D', 'INPUT', '-i', bridge, '-j', 'DROP']);
    const response = await fetch(`${service.url}/health`);
    const body = (await response.json()) as { checks: { service: string; message?: string }[] };
    expect(response.status).toBe(503);
    const message = body.checks.find((check) => check.service === 'Sandbox')?.message ?? '';
    expect(message).toContain(`${network}: DOCKER-USER lacks: -i ${bridge}`);
    expect(message).toContain(`${network}: ip6tables INPUT lacks: -i ${bridge} -j DROP`);
  });
});
