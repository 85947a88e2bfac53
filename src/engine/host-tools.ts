import Docker from 'dockerode';
import { Readable, Writable } from 'node:stream';
import { isConflict, isMissing } from './docker-status.js';

/** The image of the tools container: an empty root filesystem, imported on each daemon. */
export const HOST_TOOLS_IMAGE = 'bindery/host-tools:empty';
/** The one tools container of a daemon, shared by every Bindery process that reaches it. */
export const HOST_TOOLS_CONTAINER = 'bindery-host-tools';
/**
 * What of the host the tools container sees: its programs and their libraries (read-only), and
 * /run for the xtables lock. Debian's /bin, /sbin and /lib are links into /usr; Docker binds
 * what a link points to.
 */
const HOST_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc'];

/** Runs `command` (one of the host's own programs) on the host; resolves with its output. */
export type HostCommand = (command: string[], input?: string) => Promise<string>;

/**
 * The host programs of the machine behind a Docker daemon (`iptables`, `ebtables`, `ip`), run in
 * its network namespace as root with NET_ADMIN and NET_RAW: what the sandbox needs to install
 * and read the firewall of a Swarm node it reaches only through that node's daemon. They run in
 * one long-lived container of an empty image (no image needs to reach the node first) that
 * binds the host's own programs and libraries, so each is the version the host's Docker uses.
 */
export function hostTools(docker: Docker): HostCommand {
  let ready: Promise<Docker.Container> | undefined;
  const container = () => {
    ready ??= startToolsContainer(docker).catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return ready;
  };
  return async (command, input) => {
    const argv =
      input === undefined ? command : ['sh', '-c', 'printf %s "$0" | "$@"', input, ...command];
    try {
      return await execIn(docker, await container(), argv);
    } catch (error) {
      // Removed or stopped since (bindery sandbox --remove, a daemon restart): start it again, once.
      if (!isMissing(error) && !/is not running/.test((error as Error).message)) throw error;
      ready = undefined;
      return execIn(docker, await container(), argv);
    }
  };
}

async function startToolsContainer(docker: Docker): Promise<Docker.Container> {
  const images = await docker.listImages({ filters: { reference: [HOST_TOOLS_IMAGE] } });
  if (images.length === 0) {
    // A tar archive with no entries: two zero blocks.
    const [repo, tag] = HOST_TOOLS_IMAGE.split(':');
    const stream = await docker.importImage(Readable.from([Buffer.alloc(1024)]) as never, {
      repo,
      tag,
    });
    await new Promise((resolve, reject) =>
      docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))),
    );
  }
  let tools = docker.getContainer(HOST_TOOLS_CONTAINER);
  try {
    tools = await docker.createContainer({
      name: HOST_TOOLS_CONTAINER,
      Image: HOST_TOOLS_IMAGE,
      Cmd: ['sleep', 'infinity'],
      Labels: { 'bindery.kind': 'host-tools' },
      HostConfig: {
        NetworkMode: 'host',
        CapDrop: ['ALL'],
        CapAdd: ['NET_ADMIN', 'NET_RAW'],
        Binds: [...HOST_PATHS.map((path) => `${path}:${path}:ro`), '/run:/run'],
        RestartPolicy: { Name: 'unless-stopped' },
      },
    });
  } catch (error) {
    // Another Bindery process made it first.
    if (!isConflict(error)) throw error;
  }
  const state = (await tools.inspect()).State;
  if (!state.Running) await tools.start();
  return tools;
}

async function execIn(docker: Docker, container: Docker.Container, argv: string[]) {
  const exec = await container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const collect = (chunks: Buffer[]) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
  docker.modem.demuxStream(stream, collect(out), collect(err));
  await new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
  const { ExitCode } = await exec.inspect();
  const stdout = Buffer.concat(out).toString();
  if (ExitCode !== 0) {
    const stderr = Buffer.concat(err).toString().trim();
    throw new Error(stderr || `${argv[0]} exited with ${ExitCode}`);
  }
  return stdout;
}
