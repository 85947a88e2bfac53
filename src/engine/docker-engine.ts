import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { BuildError, ConfigError, UnavailableError } from '../errors.js';
import type { DockerConnection } from '../docker-connection.js';
import { createBuildCgroup } from './build-cgroup.js';
import { dockerOptions, dockerUnreachable } from './docker-options.js';
import { isMissing } from './docker-status.js';
import { committedImageId, nameFailedBuildLayers } from './failed-build-layers.js';
import {
  dataRootSpace,
  imageIdsInUse,
  listImagesUnder,
  removeImageUnlessUsed,
} from './docker-images.js';
import { pullImage, pushImage, registryHasImage } from './docker-registry.js';
import { JUPYTER_PORT, jupyterUrl } from './jupyter-url.js';
import { LineSplitter } from './line-splitter.js';
import type {
  BuildImageOptions,
  BuiltImage,
  ContainerEngine,
  DiskSpace,
  ImageFacts,
  LayerProgress,
  Limits,
  NetworkFacts,
  RunOptions,
  NetworkSpec,
  RegistryAuth,
  RunningSession,
  SessionContainer,
  SessionHost,
  SessionSpec,
} from './container-engine.js';

/** Longest build log line passed on; longer output is passed on in pieces of this size. */
export const MAX_LOG_LINE = 8 * 1024;
/** Longest JSON message accepted from Docker's build stream. */
const MAX_BUILD_MESSAGE = 4 * 2 ** 20;
/** Most image ids kept from a build's log (a step may print such lines itself). */
const MAX_COMMITTED_IDS = 1_000;

type BuildMessage = { stream?: string; error?: string; errorDetail?: { message?: string } };

function hostLimits(limits: Limits): Docker.HostConfig {
  return {
    NanoCpus: Math.round(limits.cpus * 1e9),
    Memory: limits.memoryBytes,
    // Equal to Memory: no swap beyond the memory limit.
    MemorySwap: limits.memoryBytes,
    PidsLimit: limits.pidsLimit ?? 512,
    Ulimits: [{ Name: 'nofile', Soft: 4096, Hard: 4096 }],
  };
}

/** The only place dockerode is used: ContainerEngine on a Docker daemon. */
export class DockerEngine implements ContainerEngine {
  private readonly docker: Docker;
  /** Whether the daemon is on this machine, so its data root is a path here. */
  private readonly local: boolean;

  /** Where the daemon is, for messages: DOCKER_HOST, or the local socket. */
  private readonly address: string;

  /**
   * `connection` is config.docker (DOCKER_HOST with its TLS or ssh settings), or DOCKER_HOST's
   * value alone; unset means the local socket.
   */
  constructor(connection?: DockerConnection | string) {
    const host = typeof connection === 'object' ? connection.host : connection;
    this.local = !host || host.startsWith('unix://');
    this.address = host ?? 'unix:///var/run/docker.sock';
    this.docker = new Docker(dockerOptions(connection));
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw new UnavailableError(dockerUnreachable(this.address, error as Error));
    }
  }

  async imageExists(name: string): Promise<boolean> {
    return (await this.inspectImage(name)) !== undefined;
  }

  async inspectImage(name: string): Promise<ImageFacts | undefined> {
    try {
      const info = await this.docker.getImage(name).inspect();
      return {
        id: info.Id,
        labels: info.Config.Labels ?? {},
        fromRegistry: (info.RepoDigests ?? []).length > 0,
      };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async buildImage(options: BuildImageOptions): Promise<void> {
    // Docker's build API has no pids limit; a cgroup parent of the build's own holds one.
    const cgroup = options.limits.pidsLimit
      ? await createBuildCgroup(options.limits.pidsLimit)
      : undefined;
    const committed: string[] = [];
    const startedAt = Date.now();
    try {
      await this.runBuild(options, cgroup?.parent, committed);
    } catch (error) {
      // Best effort: the build's own failure is what its caller hears about.
      if (options.failedTag) {
        await nameFailedBuildLayers(this.docker, committed, startedAt, options.failedTag).catch(
          () => [],
        );
      }
      throw error;
    } finally {
      await cgroup?.remove();
    }
  }

  private async runBuild(
    options: BuildImageOptions,
    cgroupParent: string | undefined,
    committed: string[],
  ): Promise<void> {
    const response = (await this.docker.buildImage(options.context, {
      t: options.tag,
      dockerfile: options.dockerfile,
      labels: options.labels,
      buildargs: options.buildArgs,
      networkmode: options.network,
      extrahosts: options.extraHosts,
      memory: options.limits.memoryBytes,
      memswap: options.limits.memoryBytes,
      cpuperiod: 100_000,
      cpuquota: Math.round(options.limits.cpus * 100_000),
      cgroupparent: cgroupParent,
      rm: true,
      forcerm: true,
      abortSignal: options.signal,
    } as Docker.ImageBuildOptions)) as Readable;

    let step: string | undefined;
    const lines = new LineSplitter(MAX_LOG_LINE);
    let failure: string | undefined;
    const onLine = (line: string) => {
      if (/^Step \d+\/\d+ : /.test(line)) step = line;
      const id = committedImageId(line);
      if (id && committed.length < MAX_COMMITTED_IDS) committed.push(id);
      options.onOutput(line);
    };
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      options.signal?.addEventListener('abort', () => response.destroy(), { once: true });
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffered += chunk;
        // Docker sends one JSON message a line, each a write of the build's; a "message" this
        // long is not Docker's, and holding it would hold the memory.
        if (buffered.length > MAX_BUILD_MESSAGE) {
          response.destroy(new Error('a message from Docker was too long'));
          return;
        }
        const messages = buffered.split('\n');
        buffered = messages.pop() ?? '';
        for (const raw of messages) {
          if (!raw.trim()) continue;
          let message: BuildMessage;
          try {
            message = JSON.parse(raw) as BuildMessage;
          } catch {
            continue;
          }
          if (message.error || message.errorDetail) {
            failure = message.errorDetail?.message ?? message.error;
          } else if (message.stream) {
            lines.push(message.stream).forEach(onLine);
          }
        }
      });
      response.on('end', resolve);
      response.on('close', resolve);
      response.on('error', reject);
    }).catch((error: Error) => {
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      throw new UnavailableError(`The build stream from Docker broke: ${error.message}`);
    });
    lines.flush().forEach(onLine);
    if (options.signal?.aborted) throw options.signal.reason;
    if (failure !== undefined) throw new BuildError(failure, step);
    if (!(await this.imageExists(options.tag))) {
      throw new BuildError('Docker ended the build without an image; see the log above.', step);
    }
  }

  async runToCompletion(
    options: RunOptions,
  ): Promise<{ exitCode: number; output: string; timedOut?: boolean }> {
    const container = await this.docker.createContainer({
      Image: options.image,
      Cmd: options.cmd,
      Env: Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`),
      User: options.user,
      Tty: true,
      Labels: { 'bindery.kind': 'build' },
      NetworkDisabled: options.networkDisabled,
      HostConfig: {
        ...hostLimits(options.limits),
        NetworkMode: options.networkDisabled ? 'none' : undefined,
        SecurityOpt: ['no-new-privileges'],
        CapDrop: ['ALL'],
      },
    });
    try {
      // Attached before start, so no output is missed; with a TTY the stream is raw text.
      // (container.logs() is no good here: docker-modem JSON-parses a body such as "3.11".)
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      let output = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (output += chunk));
      const ended = new Promise((resolve) => stream.on('end', resolve));
      await container.start();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        container.kill().catch(() => {});
      }, options.timeoutMs);
      const { StatusCode } = (await container.wait().finally(() => clearTimeout(timer))) as {
        StatusCode: number;
      };
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      const result = { exitCode: StatusCode, output: output.replace(/\r\n/g, '\n') };
      return timedOut ? { ...result, timedOut } : result;
    } finally {
      await container.remove({ force: true, v: true }).catch(() => {});
    }
  }

  async runSession(spec: SessionSpec): Promise<RunningSession> {
    const container = await this.docker.createContainer({
      name: spec.name,
      Image: spec.image,
      Cmd: spec.cmd,
      Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
      User: '1000:1000',
      Labels: spec.labels,
      ExposedPorts: { [`${JUPYTER_PORT}/tcp`]: {} },
      HostConfig: {
        ...hostLimits(spec.limits),
        // An init as PID 1 reaps orphans: Jupyter does not, and a fork bomb's zombies would
        // otherwise hold the pids limit for good.
        Init: true,
        SecurityOpt: ['no-new-privileges'],
        CapDrop: ['ALL'],
        Runtime: spec.runtime,
        NetworkMode: spec.network,
        PortBindings: spec.publishOn
          ? { [`${JUPYTER_PORT}/tcp`]: [{ HostIp: spec.publishOn, HostPort: '' }] }
          : undefined,
      },
    });
    try {
      await container.start();
      const info = await container.inspect();
      const address = Object.values(info.NetworkSettings.Networks ?? {})[0]?.IPAddress ?? '';
      const binding = info.NetworkSettings.Ports?.[`${JUPYTER_PORT}/tcp`]?.[0];
      const url = jupyterUrl({
        networkAddress: address,
        published:
          spec.publishOn && binding
            ? { host: spec.publishOn, port: Number(binding.HostPort) }
            : undefined,
      });
      if (!url) {
        throw new UnavailableError(
          `The session container ${spec.name} started with no address to reach it on` +
            (spec.network ? ` (network ${spec.network}).` : '.'),
        );
      }
      return { id: info.Id, name: spec.name, address, url };
    } catch (error) {
      await container.remove({ force: true, v: true }).catch(() => {});
      throw error;
    }
  }

  async ensureNetwork(spec: NetworkSpec): Promise<{ subnet: string; gateway: string }> {
    let info = await this.docker
      .getNetwork(spec.name)
      .inspect()
      .catch((error: unknown) => (isMissing(error) ? undefined : Promise.reject(error)));
    if (!info) {
      await this.docker
        .createNetwork({
          Name: spec.name,
          Driver: 'bridge',
          CheckDuplicate: true,
          Labels: spec.labels,
          Options: {
            'com.docker.network.bridge.name': spec.bridge,
            'com.docker.network.bridge.enable_icc': String(spec.interContainer),
          },
        })
        .catch(async (error: Error) => {
          // Docker hands each bridge network a subnet from its default-address-pools (31 of
          // them unless dockerd is told otherwise); past that, creating one fails.
          if (!/address pool/i.test(error.message)) throw error;
          const count = (await this.docker.listNetworks()).length;
          throw new UnavailableError(
            `Docker has no subnet left for the network ${spec.name}: its address pools are used up (${count} networks exist). ` +
              'Remove networks no longer used (docker network prune), give dockerd more or smaller default-address-pools, ' +
              'or lower BINDERY_BUILD_CONCURRENCY.',
          );
        });
      info = await this.docker.getNetwork(spec.name).inspect();
    }
    const options = (info.Options ?? {}) as Record<string, string>;
    const icc = options['com.docker.network.bridge.enable_icc'] ?? 'true';
    if (
      options['com.docker.network.bridge.name'] !== spec.bridge ||
      icc !== String(spec.interContainer)
    ) {
      throw new ConfigError(
        `The Docker network ${spec.name} exists with bridge ${options['com.docker.network.bridge.name'] ?? '(default)'} ` +
          `and inter-container traffic ${icc}; Bindery needs bridge ${spec.bridge} and ${spec.interContainer}. ` +
          `Remove it (docker network rm ${spec.name}) and start again.`,
      );
    }
    const ipam = (info.IPAM?.Config ?? [])[0] as { Subnet?: string; Gateway?: string } | undefined;
    return { subnet: ipam?.Subnet ?? '', gateway: ipam?.Gateway ?? '' };
  }

  async networkAddresses(name: string): Promise<{ subnet: string; gateway: string }> {
    const info = await this.docker.getNetwork(name).inspect();
    const ipam = ((info.IPAM?.Config ?? []) as { Subnet?: string; Gateway?: string }[]).find(
      (config) => config.Subnet && !config.Subnet.includes(':'),
    );
    return { subnet: ipam?.Subnet ?? '', gateway: ipam?.Gateway ?? '' };
  }

  async removeNetwork(name: string): Promise<void> {
    try {
      await this.docker.getNetwork(name).remove();
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  async listNetworks(label: string): Promise<NetworkFacts[]> {
    const networks = await this.docker.listNetworks({ filters: { label: [label] } });
    return networks.map((network) => {
      const ipam = (network.IPAM?.Config ?? [])[0] as { Subnet?: string } | undefined;
      const options = (network.Options ?? {}) as Record<string, string>;
      return {
        name: network.Name,
        subnet: ipam?.Subnet ?? '',
        bridge: options['com.docker.network.bridge.name'] ?? '',
        created: new Date((network as { Created?: string }).Created ?? 0),
        labels: network.Labels ?? {},
      };
    });
  }

  async listSessions(): Promise<SessionContainer[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: ['bindery.kind=session'] },
    });
    return containers.map((container) => {
      const address = Object.values(container.NetworkSettings?.Networks ?? {})[0]?.IPAddress ?? '';
      const binding = container.Ports.find(
        (port) => port.PrivatePort === JUPYTER_PORT && port.PublicPort && port.IP,
      );
      return {
        id: container.Id,
        name: (container.Names[0] ?? '').replace(/^\//, ''),
        running: container.State === 'running',
        address,
        url: jupyterUrl({
          networkAddress: address,
          published: binding ? { host: binding.IP, port: binding.PublicPort } : undefined,
        }),
        labels: container.Labels,
      };
    });
  }

  async waitForExit(idOrName: string): Promise<number> {
    const { StatusCode } = (await this.docker.getContainer(idOrName).wait()) as {
      StatusCode: number;
    };
    return StatusCode;
  }

  async removeContainer(idOrName: string): Promise<void> {
    try {
      // With its anonymous volumes (an image's VOLUME): they would outlive it otherwise.
      await this.docker.getContainer(idOrName).remove({ force: true, v: true });
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  async removeImage(name: string): Promise<void> {
    try {
      await this.docker.getImage(name).remove({ force: true });
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  listImages(prefix: string): Promise<BuiltImage[]> {
    return listImagesUnder(this.docker, prefix);
  }

  registryHasImage(name: string, auth?: RegistryAuth): Promise<boolean> {
    return registryHasImage(this.docker, name, auth);
  }

  pushImage(
    name: string,
    options: { auth?: RegistryAuth; onProgress?: (layers: LayerProgress) => void } = {},
  ): Promise<void> {
    return pushImage(this.docker, name, options);
  }

  pullImage(name: string, auth?: RegistryAuth): Promise<void> {
    return pullImage(this.docker, name, auth);
  }

  imagesInUse(): Promise<Set<string>> {
    return imageIdsInUse(this.docker);
  }

  removeUnusedImage(name: string): Promise<boolean> {
    return removeImageUnlessUsed(this.docker, name);
  }

  diskSpace(): Promise<DiskSpace | undefined> {
    return dataRootSpace(this.docker, this.local);
  }

  async archivePath(idOrName: string, path: string): Promise<Readable> {
    // Docker reads the path inside the container's own root (chrooted), so a link the
    // session planted cannot point the read at the host's files.
    return (await this.docker.getContainer(idOrName).getArchive({ path })) as Readable;
  }

  /** None: sessions run on this daemon's host. */
  async sessionHosts(_network: string): Promise<SessionHost[]> {
    return [];
  }
}
