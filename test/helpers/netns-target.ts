import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface NetnsTargetOptions {
  /** Name of the network namespace; at most 12 characters, as it also names the veth pair. */
  name: string;
  /** The host's (root namespace's) address on the veth, e.g. 10.250.0.1. */
  hostAddress: string;
  /** The target's address inside the namespace, e.g. 10.250.0.2. */
  address: string;
  /** Prefix length of both addresses. @defaultValue 24 */
  prefix?: number;
  /** TCP ports the target listens on, each answering `bindery-target <port>\n`. */
  ports: number[];
}

export interface NetnsTarget {
  address: string;
  ports: readonly number[];
  /** The veth end in the root namespace (the route to the target goes through it). */
  hostInterface: string;
  /** Stops the server and removes the namespace and the veth pair; safe to call twice. */
  close(): Promise<void>;
}

export interface ProbeResult {
  connected: boolean;
  /** What the server sent before closing (or before the timeout); only when connected. */
  banner?: string;
  /** Why it did not connect (refused, timed out, unreachable), or why reading failed. */
  error?: string;
}

/** Answers every connection with one line naming the port it came in on, then closes it. */
const SERVER = `
const net = require('node:net');
const ports = process.argv.slice(1).map(Number);
let listening = 0;
for (const port of ports) {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end('bindery-target ' + port + '\\n');
  });
  server.on('error', (error) => {
    console.error('port ' + port + ': ' + error.message);
    process.exit(1);
  });
  server.listen(port, '0.0.0.0', () => {
    if (++listening === ports.length) console.log('ready');
  });
}
`;

const ip = (...args: string[]) => exec('ip', args);
const ignore = () => {};

function vethNames(name: string): { host: string; peer: string } {
  return { host: `${name}-h`, peer: `${name}-n` };
}

/** Kills whatever still runs in namespace `name`, then removes its veth pair and the namespace. */
async function removeNamespace(name: string): Promise<void> {
  const { stdout } = await ip('netns', 'pids', name).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  // Deleting the host end removes both ends at once; the namespace's own deletion would
  // release its end (and with it the pair) only later, asynchronously.
  await ip('link', 'del', vethNames(name).host).catch(ignore);
  await ip('netns', 'del', name).catch(ignore);
}

/** Interfaces of the root namespace, other than `except`, with an address in address/prefix. */
async function interfacesOnSubnet(address: string, prefix: number, except: string) {
  const block = 2 ** (32 - prefix);
  const network = (a: string) =>
    Math.floor(a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0) / block);
  const { stdout } = await ip('-j', '-4', 'addr', 'show');
  const links = JSON.parse(stdout) as { ifname: string; addr_info: { local: string }[] }[];
  return links
    .filter((link) => link.ifname !== except)
    .filter((link) => link.addr_info.some((info) => network(info.local) === network(address)))
    .map((link) => link.ifname);
}

/**
 * A "public" host that the test owns: a network namespace joined to the root namespace by a
 * veth pair, with a TCP server inside listening on `ports`. Containers reach it the way they
 * reach the internet (out of their bridge, masqueraded by Docker, routed by the host), unlike
 * a container on another Docker network, which Docker's isolation rules would cut off anyway.
 * Leftovers of a namespace of the same name (a run that crashed) are removed first, so two
 * test files running at once must use different names and subnets. Taken so far (jest may run
 * files side by side): netns-target.test 10.250, 10.251 and 10.254 (`bnd-t…`); sandbox-egress
 * 10.252 and 10.253 (`bnd-e…`); sandbox-build-network 10.244.46 and 10.244.47 (`bnd-b…`);
 * swarm-sessions 10.244.48 and 10.244.49 (`bnd-s…`); swarm-second-node 10.244.50 to 10.244.53
 * (`bnd-n…`);
 * git-dns-pinning 192.88.99.0/30 (`bnd-pin`).
 */
export async function startNetnsTarget(options: NetnsTargetOptions): Promise<NetnsTarget> {
  const { name, hostAddress, address, ports } = options;
  const prefix = options.prefix ?? 24;
  if (!/^[a-z0-9][a-z0-9-]{0,11}$/.test(name)) {
    throw new Error(`netns name "${name}" must be 1–12 lowercase letters, digits or dashes`);
  }
  const veth = vethNames(name);
  await removeNamespace(name);
  const clashing = await interfacesOnSubnet(address, prefix, veth.host);
  if (clashing.length > 0) {
    throw new Error(`${address}/${prefix} is already on ${clashing.join(', ')} of this host`);
  }

  let server: ChildProcess | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      if (server && server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((resolve) => server!.once('exit', resolve));
        server.kill('SIGKILL');
        await exited;
      }
      await removeNamespace(name);
    })());

  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', veth.host, 'type', 'veth', 'peer', 'name', veth.peer, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/${prefix}`, 'dev', veth.host);
    await ip('link', 'set', veth.host, 'up');
    await ip('-n', name, 'addr', 'add', `${address}/${prefix}`, 'dev', veth.peer);
    await ip('-n', name, 'link', 'set', veth.peer, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'route', 'add', 'default', 'via', hostAddress);

    const child = spawn(
      'ip',
      ['netns', 'exec', name, process.execPath, '-e', SERVER, ...ports.map(String)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server = child;
    await new Promise<void>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(
        () => reject(new Error(`the target in ${name} did not listen within 10 s: ${stderr}`)),
        10_000,
      );
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the target in ${name} exited (${code ?? signal}): ${stderr}`));
      });
    });
  } catch (error) {
    await close();
    throw error;
  }
  return { address, ports: Object.freeze([...ports]), hostInterface: veth.host, close };
}

/** Connects to host:port and reads until the server closes; never throws. */
const PROBE = `
import json, socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    conn = socket.create_connection((host, port), timeout=timeout)
except OSError as error:
    print(json.dumps({"connected": False, "error": f"{type(error).__name__}: {error}"}))
    sys.exit(0)
data, failure = b"", None
try:
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError as error:
    failure = f"{type(error).__name__}: {error}"
conn.close()
result = {"connected": True, "banner": data.decode("utf-8", "replace")}
if failure:
    result["error"] = failure
print(json.dumps(result))
`;

/**
 * Seconds a probe waits to connect, and then for the banner. Refusals (REJECT, no listener)
 * come back at once whatever this is; only a dropped connection waits it out. 3 s was too
 * short on a loaded host: at load 12 on 2 CPUs a probe connected and got no banner within it.
 */
const PROBE_TIMEOUT_SECONDS = 10;

/**
 * From inside `container` (with the session image's python3), opens a TCP connection to
 * host:port and reads what the server sends. Refused, unreachable and timed-out connections
 * are `connected: false`; reading stops when the server closes or after `timeoutSeconds`.
 */
export async function probe(
  container: string,
  host: string,
  port: number,
  timeoutSeconds = PROBE_TIMEOUT_SECONDS,
  /** The Docker daemon holding the container (`docker -H`); the default one when unset. */
  dockerHost?: string,
): Promise<ProbeResult> {
  const { stdout } = await exec(
    'docker',
    [
      ...(dockerHost ? ['-H', dockerHost] : []),
      'exec',
      container,
      'python3',
      '-c',
      PROBE,
      host,
      String(port),
      String(timeoutSeconds),
    ],
    { timeout: (timeoutSeconds * 2 + 15) * 1000 },
  );
  return JSON.parse(stdout) as ProbeResult;
}

/** The same connection attempt from this process, i.e. from the host's root namespace. */
export function probeFromHost(
  host: string,
  port: number,
  timeoutMs = PROBE_TIMEOUT_SECONDS * 1000,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let connected = false;
    let banner = '';
    const finish = (error?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(
        connected ? { connected, banner, ...(error ? { error } : {}) } : { connected, error },
      );
    };
    const timer = setTimeout(() => finish('timed out'), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => (connected = true));
    socket.on('data', (chunk: string) => (banner += chunk));
    socket.on('end', () => finish());
    socket.on('error', (error) => finish(error.message));
  });
}
