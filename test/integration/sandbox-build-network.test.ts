/**
 * Build steps run on networks of their own, one per build, never on the sessions' bridge nor
 * beside another build, behind the same egress rules; IPv6 is off for all of them; a build does
 * not start while those rules are missing. Proven through a whole service (web + worker, two
 * builds at once): a real session is launched, a victim build starts and downloads (connects
 * through the host) again and again, then a repository whose Dockerfile runs a hostile step as
 * root (Docker gives build containers NET_RAW) is built through /build beside it. The hostile
 * step probes egress, forges an IPv6 datagram to the host by hand, and sends gratuitous ARP
 * claiming the session's address, the victim build's and its own gateway's, while this test
 * watches the host's neighbour entries for the session and the victim, the session's proxied
 * api/status, and the victim's downloads. Every address involved is this test's own: its
 * namespaces, its networks, its containers.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { BUILD_NETWORK_LABEL, buildBridgePrefix } from '../../src/sandbox/build-networks.js';
import { egressChain } from '../../src/sandbox/egress-rules.js';
import { bridgeFor, buildNetworkFor, prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService, type RunningService } from '../../src/service.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { startNetnsTarget, type NetnsTarget } from '../helpers/netns-target.js';
import { waitFor } from '../helpers/wait-for.js';
import { quietLog } from '../helpers/capture-log.js';

const exec = promisify(execFile);
const run = randomBytes(3).toString('hex');
const namespace = `bn${run}`;
const prefix = `bindery-test/n${run}-`;
const ALLOWED = { name: 'bnd-b246', hostAddress: '10.244.46.1', address: '10.244.46.2' };
const FORBIDDEN = { name: 'bnd-b247', hostAddress: '10.244.47.1', address: '10.244.47.2' };
const TARGET6 = { host: 'fd44:246::1', address: 'fd44:246::2' };
const SPOOF_SECONDS = 20;
/** How long the victim build downloads: long enough to outlast the hostile build's spoofing. */
const VICTIM_SECONDS = 90;
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
const buildUrl = (repo: string, sha: string) =>
  `${service.url}/build/git/${escaped(repo)}/${sha}?build_only=true`;
const asOperator = { headers: { authorization: 'Bearer test-token' } };

const ipv4 = (address: string) =>
  address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);

/** Whether an IPv4 address lies in a.b.c.d/n. */
function inSubnet(address: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const block = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / block) === Math.floor(ipv4(base) / block);
}

async function neighbourOf(ip: string, dev: string): Promise<string | undefined> {
  const { stdout } = await exec('ip', ['-j', 'neigh', 'show', ip, 'dev', dev]);
  return (JSON.parse(stdout || '[]') as { lladdr?: string }[])[0]?.lladdr;
}

/** The interface the host routes `ip` through. */
async function deviceFor(ip: string): Promise<string> {
  const { stdout } = await exec('ip', ['-j', 'route', 'get', ip]);
  return (JSON.parse(stdout) as { dev: string }[])[0]!.dev;
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

/** The build networks of this test's service that exist now: name, subnet, IPv6, subnets. */
async function buildNetworks(): Promise<{ name: string; subnet: string; ipv6: string }[]> {
  const label = `${BUILD_NETWORK_LABEL}=${buildNetworkFor(config.sandbox.network)}`;
  const { stdout: names } = await exec('docker', [
    'network',
    'ls',
    '-q',
    '--filter',
    `label=${label}`,
  ]);
  if (!names.trim()) return [];
  const { stdout } = await exec('docker', [
    'network',
    'inspect',
    '-f',
    '{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{.EnableIPv6}}/{{len .IPAM.Config}}',
    ...names.trim().split('\n'),
  ]).catch(() => ({ stdout: '' }));
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '))
    .map(([name = '', subnet = '', ipv6 = '']) => ({ name, subnet, ipv6 }));
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
    BINDERY_EGRESS_ALLOW_CIDRS: '10.244.46.0/24',
    BINDERY_BUILD_CONCURRENCY: '2',
  });
  service = await startService({
    config,
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: quietLog,
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
    const sandbox = await prepareSandbox({ engine, config, log: quietLog });
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

describe('a hostile build step, run as root through the service beside another build', () => {
  let log = '';
  let victimLog = '';
  const samples: { lladdr: string | undefined; status: number | string }[] = [];
  /** The host's neighbour entry for the victim build, on the link it routes the victim through. */
  const victimSamples: (string | undefined)[] = [];
  /** Build networks seen while both builds ran. */
  const networksSeen = new Map<string, { subnet: string; ipv6: string }>();
  let mostAtOnce = 0;
  let victim = { ip: '', mac: '', dev: '' };
  let spoofingEndedFirst = false;
  const token = randomBytes(8).toString('hex');

  beforeAll(async () => {
    const victimRepo = await git.publish(
      'victim',
      join(import.meta.dirname, '../fixtures/repos/build-victim'),
    );
    const victimSha = await git.commit('victim', {
      'target.json': JSON.stringify({ target: [ALLOWED.address, 80], seconds: VICTIM_SECONDS }),
    });
    let announced: (address: string) => void = () => {};
    const address = new Promise<string>((resolve) => (announced = resolve));
    let victimEnded = false;
    const victimBuild = readEventStream(buildUrl(victimRepo.url, victimSha), {
      ...asOperator,
      onEvent: (event) => {
        const message = String(event.message ?? '');
        if (message.startsWith('victim address ')) announced(message);
        if (message.startsWith('victim connections ')) victimEnded = true;
      },
    }).finally(() => announced(''));
    const [, ip = '', mac = ''] = /^victim address (\S+) (\S+)/.exec(await address) ?? [];
    if (!ip)
      throw new Error(`the victim build did not start: ${JSON.stringify(await victimBuild)}`);
    victim = { ip, mac, dev: await deviceFor(ip) };

    const fixture = join(import.meta.dirname, '../fixtures/repos/hostile-build');
    const repo = await git.publish('hostile', fixture);
    const sha = await git.commit('hostile', {
      'target.json': JSON.stringify({
        claim: [session.ip, victim.ip],
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
    const statusUrl = `${session.url}api/status?token=${session.token}`;
    const bridge = bridgeFor(config.sandbox.network);
    // The proxy has talked to the session, the victim to its target: the host has neighbour
    // entries to watch.
    samples.push({
      lladdr: await neighbourOf(session.ip, bridge),
      status: await statusOf(statusUrl),
    });
    victimSamples.push(await neighbourOf(victim.ip, victim.dev));
    let done = false;
    const build = readEventStream(buildUrl(repo.url, sha), {
      ...asOperator,
      onEvent: (event) => {
        if (String(event.message ?? '').startsWith('arp frames sent')) {
          spoofingEndedFirst = !victimEnded;
        }
      },
    }).finally(() => (done = true));
    while (!done) {
      samples.push({
        lladdr: await neighbourOf(session.ip, bridge),
        status: await statusOf(statusUrl),
      });
      victimSamples.push(await neighbourOf(victim.ip, victim.dev));
      const networks = await buildNetworks();
      mostAtOnce = Math.max(mostAtOnce, networks.length);
      for (const { name, ...facts } of networks) networksSeen.set(name, facts);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const { events } = await build;
    log = logOf(events);
    if (events.at(-1)?.phase !== 'ready') {
      throw new Error(`the hostile build did not finish: ${JSON.stringify(events.at(-1))}\n${log}`);
    }
    const victimEvents = (await victimBuild).events;
    victimLog = logOf(victimEvents);
    if (victimEvents.at(-1)?.phase !== 'ready') {
      throw new Error(`the victim build did not finish: ${JSON.stringify(victimEvents.at(-1))}`);
    }
  }, 600_000);

  test('ran beside the victim build, and sent its forged frames while the victim ran', () => {
    expect(log).toMatch(/arp frames sent [1-9]\d+/);
    expect(log).toContain('ipv6 frames sent 5');
    expect(spoofingEndedFirst).toBe(true);
  });

  test("runs on a network of its own, neither the sessions' subnet nor the other build's", async () => {
    const address = /build address (\S+)/.exec(log)?.[1] ?? '';
    const { stdout } = await exec('docker', [
      'network',
      'inspect',
      '-f',
      '{{range .IPAM.Config}}{{.Subnet}}{{end}}',
      config.sandbox.network,
    ]);
    const subnets = [stdout.trim(), ...[...networksSeen.values()].map((n) => n.subnet)];
    const victimSubnet = subnets.find((subnet) => inSubnet(victim.ip, subnet));
    const ownSubnet = subnets.find((subnet) => inSubnet(address, subnet));
    expect({ mostAtOnce, victimSubnet, ownSubnet, shared: victimSubnet === ownSubnet }).toEqual({
      mostAtOnce: 2,
      victimSubnet: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
      ownSubnet: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
      shared: false,
    });
    expect(inSubnet(address, stdout.trim())).toBe(false);
  });

  test("leaves the host's neighbour entry for the session and its proxied api/status unchanged", () => {
    expect(samples.length).toBeGreaterThan(SPOOF_SECONDS);
    const changed = samples.filter((s) => s.lladdr !== session.mac || s.status !== 200);
    expect({ mac: session.mac, changed }).toEqual({ mac: session.mac, changed: [] });
  });

  test("leaves the host's neighbour entry for the other build and its downloads unchanged", () => {
    expect(victimSamples.length).toBeGreaterThan(SPOOF_SECONDS);
    expect(victimSamples[0]).toBe(victim.mac);
    const changed = victimSamples.filter((mac) => mac !== victim.mac);
    const [, ok = '0', failed = ''] =
      /victim connections ok (\d+) failed (\d+)/.exec(victimLog) ?? [];
    expect({ changed, failed }).toEqual({ changed: [], failed: '0' });
    expect(Number(ok)).toBeGreaterThan(VICTIM_SECONDS);
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

  test('each build network had no IPv6 and is gone after its build, with its ARP rule', async () => {
    expect([...networksSeen.values()].map((n) => n.ipv6)).toEqual(['false/1', 'false/1']);
    expect(await buildNetworks()).toEqual([]);
    const { stdout } = await exec('ebtables', ['-L', 'FORWARD']);
    for (const { subnet } of networksSeen.values()) expect(stdout).not.toContain(subnet);
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

  test('the session network has no IPv6, and the host drops IPv6 from it and every build bridge', async () => {
    const { stdout } = await exec('docker', [
      'network',
      'inspect',
      '-f',
      '{{.Name}} {{.EnableIPv6}} {{len .IPAM.Config}}',
      config.sandbox.network,
    ]);
    expect(stdout.trim()).toBe(`${config.sandbox.network} false 1`);
    const input = (await exec('ip6tables', ['-S', 'INPUT'])).stdout;
    const forward = (await exec('ip6tables', ['-S', 'FORWARD'])).stdout;
    const builds = `${buildBridgePrefix(buildNetworkFor(config.sandbox.network))}+`;
    for (const bridge of [bridgeFor(config.sandbox.network), builds]) {
      expect(input).toContain(`-A INPUT -i ${bridge} -j DROP`);
      expect(forward).toContain(`-A FORWARD -i ${bridge} -j DROP`);
      expect(forward).toContain(`-A FORWARD -o ${bridge} -j DROP`);
    }
  });
});

describe('a build while the build networks’ rules are missing', () => {
  const network = () => buildNetworkFor(config.sandbox.network);
  const bridges = () => `${buildBridgePrefix(network())}+`;
  let repo = '';
  /** A new commit of the hostile repository that only probes egress (no ARP, no wait). */
  const probeCommit = (note: string) =>
    git.commit('probe', {
      'target.json': JSON.stringify({
        claim: [],
        seconds: 0,
        egress: [[FORBIDDEN.address, 80]],
        egress6: [],
        udp_port: (udp6.address() as { port: number }).port,
        token: note,
      }),
    });

  beforeAll(async () => {
    repo = (
      await git.publish('probe', join(import.meta.dirname, '../fixtures/repos/hostile-build'))
    ).url;
  }, 60_000);

  /** /health's answer once it has the status asked for (it reuses an answer for a second). */
  const healthOnce = async (status: number) => {
    let body = { checks: [] as { service: string; message?: string }[] };
    await waitFor(
      async () => {
        const response = await fetch(`${service.url}/health`);
        body = (await response.json()) as typeof body;
        return response.status === status;
      },
      `/health answering ${status}`,
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; it said ${JSON.stringify(body)}`);
    });
    return body;
  };

  test('/health fails, naming each missing rule', async () => {
    await healthOnce(200);
    await exec('iptables', [
      '-D',
      'DOCKER-USER',
      '-i',
      bridges(),
      '-j',
      egressChain({ bridge: bridges() }),
    ]);
    await exec('ip6tables', ['-D', 'INPUT', '-i', bridges(), '-j', 'DROP']);
    const body = await healthOnce(503);
    const message = body.checks.find((check) => check.service === 'Sandbox')?.message ?? '';
    expect(message).toContain(`${network()}-*: DOCKER-USER lacks: -i ${bridges()}`);
    expect(message).toContain(`${network()}-*: ip6tables INPUT lacks: -i ${bridges()} -j DROP`);
  }, 60_000);

  test('is refused with a sentence naming the missing rules and the fix; nothing of it runs', async () => {
    const sha = await probeCommit('refused');
    const { events } = await readEventStream(buildUrl(repo, sha), asOperator);
    const last = events.at(-1)!;
    expect(last.phase).toBe('failed');
    expect(String(last.message)).toContain(
      "This build was not started: the build network's firewall is not in place",
    );
    expect(String(last.message)).toContain(`DOCKER-USER lacks: -i ${bridges()}`);
    expect(String(last.message)).toContain('run `bindery sandbox`');
    // Not one step of the repository's Dockerfile ran, let alone its probe.
    expect(logOf(events)).not.toMatch(/Step \d|egress/);
    expect(await buildNetworks()).toEqual([]);
  }, 120_000);

  test('builds again once `bindery sandbox` has put the rules back, behind them', async () => {
    await prepareSandbox({ engine, config, log: quietLog });
    await healthOnce(200);
    const sha = await probeCommit('restored');
    const { events } = await readEventStream(buildUrl(repo, sha), asOperator);
    expect(events.at(-1)).toMatchObject({ phase: 'ready' });
    expect(logOf(events).match(/^egress .*$/gm)).toEqual([`egress ${FORBIDDEN.address} 80 closed`]);
  }, 300_000);
});
