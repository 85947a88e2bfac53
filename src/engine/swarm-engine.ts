import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { ConfigError, UnavailableError } from '../errors.js';
import type { DockerConnection } from '../docker-connection.js';
import { DockerEngine } from './docker-engine.js';
import { dockerOptions } from './docker-options.js';
import { isConflict, isMissing } from './docker-status.js';
import { hostTools, type HostCommand } from './host-tools.js';
import { jupyterUrl } from './jupyter-url.js';
import { SwarmNodes } from './swarm-nodes.js';
import {
  configNetworkFor,
  sessionNetworkProblem,
  subnetOf,
  type NetworkInfo,
} from './swarm-network.js';
import type {
  NetworkSpec,
  RunningSession,
  SessionContainer,
  SessionHost,
  SessionSpec,
} from './container-engine.js';

/** How long a session's task may take to be scheduled and started. */
const TASK_START_TIMEOUT_MS = 120_000;
/** How long a removed service's container may take to stop: Swarm's stop grace period (10 s) and some. */
const SERVICE_STOP_TIMEOUT_MS = 15_000;
/** Task states past which a task never runs (docker/swarmkit api/types.proto, TaskState). */
const ENDED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove']);

/** A create that found its name taken: another Bindery process made it at the same moment. */
const madeByAnother = (error: unknown) => {
  if (!isConflict(error)) throw error;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Task = Docker.Task & {
  ServiceID?: string;
  NodeID?: string;
  CreatedAt?: string;
  Status?: {
    State?: string;
    Err?: string;
    ContainerStatus?: { ContainerID?: string; ExitCode?: number };
  };
};

/**
 * ContainerEngine with each session a Docker Swarm service (BINDERY_ENGINE=swarm): the same
 * limits, labels, token and environment as DockerEngine's containers, one task that Swarm
 * places and never restarts (a session that ends is gone, as on one host). Builds, images and
 * the build networks stay DockerEngine's, on this host's daemon.
 *
 * Sessions run on a swarm-scoped bridge network made from a config-only network of this node
 * (`docker network create --config-from`): on each node it is a Linux bridge with Bindery's
 * name and inter-container traffic off, so the sandbox's rules (DOCKER-USER, INPUT, ebtables)
 * hold exactly as for DockerEngine's sessions. An overlay would carry session-to-session
 * traffic inside its own namespace, where no host rule sees it.
 */
export class SwarmEngine extends DockerEngine {
  private readonly swarm: Docker;
  private readonly nodes: SwarmNodes;
  /** Each node daemon's host programs (host-tools.ts). */
  private readonly tools = new Map<Docker, HostCommand>();

  constructor(connection?: DockerConnection | string) {
    super(connection);
    this.swarm = new Docker(dockerOptions(connection));
    // Another node's daemon is reached as the manager is: the same TLS or ssh settings.
    this.nodes = new SwarmNodes(
      this.swarm,
      (host) =>
        new Docker(dockerOptions(typeof connection === 'object' ? { ...connection, host } : host)),
    );
  }

  override async ping(): Promise<void> {
    await super.ping();
    const info = (await this.swarm.info()) as {
      Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean };
    };
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) {
      throw new ConfigError(
        'BINDERY_ENGINE=swarm needs a Docker daemon that is a Swarm manager, and this one is not ' +
          `(swarm state: ${info.Swarm?.LocalNodeState ?? 'unknown'}). Run docker swarm init (or join it as a manager), ` +
          'or set BINDERY_ENGINE=docker.',
      );
    }
  }

  override async runSession(spec: SessionSpec): Promise<RunningSession> {
    if (spec.runtime) {
      throw new ConfigError(
        `A Swarm service cannot choose its container runtime (${spec.runtime}); set "default-runtime" in each node's daemon.json instead, and BINDERY_RUNTIME=runc.`,
      );
    }
    if (spec.publishOn) {
      throw new ConfigError(
        'Swarm sessions are reached on their network, not on a published port; launch them through bindery serve.',
      );
    }
    const created = await this.swarm.createService({
      Name: spec.name,
      Labels: spec.labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: spec.image,
          Command: spec.cmd,
          Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
          User: '1000:1000',
          // On the container too: the node's own tools (and DockerEngine's image accounting) see it.
          Labels: spec.labels,
          // An init reaps orphans, as DockerEngine's sessions have one.
          Init: true,
          CapabilityDrop: ['ALL'],
          Ulimits: [{ Name: 'nofile', Soft: 4096, Hard: 4096 }],
          // Docker 20.10 (API 1.41) drops it; daemons that know it apply it (SECURITY.md).
          Privileges: { NoNewPrivileges: true },
        },
        Resources: {
          Limits: {
            NanoCPUs: Math.round(spec.limits.cpus * 1e9),
            MemoryBytes: spec.limits.memoryBytes,
            Pids: spec.limits.pidsLimit ?? 512,
          },
        },
        RestartPolicy: { Condition: 'none' },
        // The proxy reaches a session at its bridge address: on this daemon's node, or on nodes
        // an operator labelled and routed (README, Sessions on Docker Swarm).
        Placement: { Constraints: await this.nodes.constraints(spec.avoidHosts) },
        Networks: spec.network ? [{ Target: spec.network }] : undefined,
      },
    } as Docker.CreateServiceOptions & Record<string, unknown>);
    const id = (created as { id?: string; ID?: string }).id ?? (created as { ID: string }).ID;
    try {
      const { containerId, node } = await this.startedContainer(id, spec.name);
      const address = await this.containerAddress(node, containerId, spec.network);
      const url = jupyterUrl({ networkAddress: address });
      if (!url) {
        throw new UnavailableError(
          `The session service ${spec.name} started with no address to reach it on` +
            (spec.network ? ` (network ${spec.network}).` : '.'),
        );
      }
      return { id, name: spec.name, address, url };
    } catch (error) {
      await this.removeContainer(id).catch(() => {});
      throw error;
    }
  }

  /** The container of the service's task once it runs; rejects with the task's error when it cannot. */
  private async startedContainer(
    serviceId: string,
    name: string,
  ): Promise<{ containerId: string; node: Docker }> {
    const deadline = Date.now() + TASK_START_TIMEOUT_MS;
    let state = 'not scheduled';
    while (Date.now() < deadline) {
      const [task] = await this.tasksOf(serviceId);
      state = task?.Status?.State ?? state;
      const containerId = task?.Status?.ContainerStatus?.ContainerID;
      if (state === 'running' && containerId && task?.NodeID) {
        return { containerId, node: await this.nodes.dockerOf(task.NodeID) };
      }
      if (ENDED.has(state)) {
        throw new UnavailableError(
          `Swarm could not start the session ${name}: its task is ${state}${task?.Status?.Err ? ` (${task.Status.Err})` : ''}.`,
        );
      }
      await sleep(200);
    }
    throw new UnavailableError(
      `Swarm did not start the session ${name} within ${TASK_START_TIMEOUT_MS / 1000} s (its task is ${state}).`,
    );
  }

  /** The service's tasks, newest first. */
  private async tasksOf(serviceId: string): Promise<Task[]> {
    const tasks = (await this.swarm.listTasks({ filters: { service: [serviceId] } })) as Task[];
    return tasks.sort((a, b) => (b.CreatedAt ?? '').localeCompare(a.CreatedAt ?? ''));
  }

  /** The container's address on `network`, read from the node's daemon (a task's reports none). */
  private async containerAddress(
    node: Docker,
    containerId: string,
    network?: string,
  ): Promise<string> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await node.getContainer(containerId).inspect();
    } catch (error) {
      if (!isMissing(error)) throw error;
      throw new UnavailableError('The session stopped as it started: its container is gone.');
    }
    const networks = info.NetworkSettings.Networks ?? {};
    const attached = (network && networks[network]) || Object.values(networks)[0];
    return attached?.IPAddress ?? '';
  }

  override async listSessions(): Promise<SessionContainer[]> {
    const services = await this.swarm.listServices({
      filters: { label: ['bindery.kind=session'] },
    });
    const tasks = (await this.swarm.listTasks()) as Task[];
    const containers = (
      await Promise.all(
        (await this.nodes.all()).map((node) =>
          node.listContainers({ all: true, filters: { label: ['bindery.kind=session'] } }),
        ),
      )
    ).flat();
    const addressOf = new Map(
      containers.map((container) => [
        container.Id,
        Object.values(container.NetworkSettings?.Networks ?? {})[0]?.IPAddress ?? '',
      ]),
    );
    return services.map((service) => {
      const [task] = tasks
        .filter((candidate) => candidate.ServiceID === service.ID)
        .sort((a, b) => (b.CreatedAt ?? '').localeCompare(a.CreatedAt ?? ''));
      const containerId = task?.Status?.ContainerStatus?.ContainerID ?? '';
      const running = task?.Status?.State === 'running';
      const address = running ? (addressOf.get(containerId) ?? '') : '';
      return {
        id: service.ID,
        name: service.Spec?.Name ?? '',
        running,
        address,
        url: jupyterUrl({ networkAddress: address }),
        labels: service.Spec?.Labels ?? {},
      };
    });
  }

  /**
   * Removes the session's service (by id or name) and resolves once its container is gone, as
   * DockerEngine's forced removal does: Swarm answers at once and stops the task after. A
   * container that is no service's is removed as DockerEngine does.
   */
  override async removeContainer(idOrName: string): Promise<void> {
    let serviceId: string;
    let tasks: Task[];
    try {
      serviceId = (await this.swarm.getService(idOrName).inspect()).ID;
      tasks = await this.tasksOf(serviceId);
      await this.swarm.getService(serviceId).remove();
    } catch (error) {
      if (!isMissing(error)) throw error;
      return super.removeContainer(idOrName);
    }
    const nodes = await Promise.all(
      [...new Set(tasks.map((task) => task.NodeID).filter((id): id is string => !!id))].map((id) =>
        this.nodes.dockerOf(id),
      ),
    );
    const deadline = Date.now() + SERVICE_STOP_TIMEOUT_MS;
    for (const node of nodes) {
      for (;;) {
        const left = await node.listContainers({
          all: true,
          filters: { label: [`com.docker.swarm.service.id=${serviceId}`] },
        });
        if (left.length === 0) break;
        // Past Swarm's stop grace period, the container goes as DockerEngine's would.
        if (Date.now() > deadline) {
          for (const container of left) {
            await node
              .getContainer(container.Id)
              .remove({ force: true, v: true })
              .catch(() => {});
          }
          break;
        }
        await sleep(200);
      }
    }
  }

  override async waitForExit(idOrName: string): Promise<number> {
    const service = await this.swarm
      .getService(idOrName)
      .inspect()
      .catch((error: unknown) => (isMissing(error) ? undefined : Promise.reject(error)));
    if (!service) return super.waitForExit(idOrName);
    for (;;) {
      const [task] = await this.tasksOf(service.ID).catch(() => []);
      if (!task || ENDED.has(task.Status?.State ?? '')) {
        return task?.Status?.ContainerStatus?.ExitCode ?? 0;
      }
      await sleep(1_000);
    }
  }

  override async archivePath(idOrName: string, path: string): Promise<Readable> {
    const service = await this.swarm
      .getService(idOrName)
      .inspect()
      .catch((error: unknown) => (isMissing(error) ? undefined : Promise.reject(error)));
    if (!service) return super.archivePath(idOrName, path);
    const [task] = await this.tasksOf(service.ID);
    const containerId = task?.Status?.ContainerStatus?.ContainerID;
    if (!containerId || !task?.NodeID)
      throw new UnavailableError(`The session ${idOrName} has no running container.`);
    // Read inside the container's own root, as DockerEngine's archivePath (links not followed out).
    const node = await this.nodes.dockerOf(task.NodeID);
    return (await node.getContainer(containerId).getArchive({ path })) as Readable;
  }

  /**
   * The labelled nodes sessions may be placed on, each with its sessions' subnet (from its own
   * config-only network) and its host programs, run through its daemon (host-tools.ts). A node
   * whose daemon is not known gets no tools: every command there fails with the reason. None
   * when no node is labelled (sessions stay on this daemon's host).
   */
  override async sessionHosts(network: string): Promise<SessionHost[]> {
    return Promise.all(
      (await this.nodes.sessionNodes()).map(async ({ id, name, docker, problem }) => {
        if (!docker) {
          const fail = () => Promise.reject(new UnavailableError(problem!));
          return { id, name, subnet: '', run: fail };
        }
        let tools = this.tools.get(docker);
        if (!tools) this.tools.set(docker, (tools = hostTools(docker)));
        const config = await this.inspectNetwork(configNetworkFor(network), docker);
        return { id, name, subnet: subnetOf(config).subnet, run: tools };
      }),
    );
  }

  /**
   * The sessions' network (`bindery.kind=session`) is swarm-scoped, made from a config-only
   * network `<name>-config` holding the bridge's name, inter-container traffic off and a subnet
   * Docker picked from its pools; every other network (the builds') is DockerEngine's.
   */
  override async ensureNetwork(spec: NetworkSpec): Promise<{ subnet: string; gateway: string }> {
    if (spec.labels['bindery.kind'] !== 'session') return super.ensureNetwork(spec);
    const configName = configNetworkFor(spec.name);
    let existing = await this.inspectNetwork(spec.name);
    let config = await this.inspectNetwork(configName);
    if (!config && !existing) {
      const { subnet, gateway } = await this.freeSubnet(spec.name);
      await this.swarm
        .createNetwork({
          Name: configName,
          ConfigOnly: true,
          // Bindery's processes start together (a stack's front and workers): without the check,
          // Docker makes two networks of one name, and every later lookup by name fails.
          CheckDuplicate: true,
          Labels: spec.labels,
          Options: {
            'com.docker.network.bridge.name': spec.bridge,
            'com.docker.network.bridge.enable_icc': String(spec.interContainer),
          },
          IPAM: { Config: [{ Subnet: subnet, Gateway: gateway }] },
        } as Docker.NetworkCreateOptions)
        .catch(madeByAnother);
      config = await this.onlyNetwork(configName);
    }
    if (!existing) {
      await this.swarm
        .createNetwork({
          Name: spec.name,
          Driver: 'bridge',
          Scope: 'swarm',
          CheckDuplicate: true,
          // Docker refuses any setting of its own (labels too) on a network made from a
          // config-only one: the config-only network carries them.
          ConfigFrom: { Network: configName },
        } as Docker.NetworkCreateOptions)
        .catch(madeByAnother);
      existing = await this.inspectNetwork(spec.name);
    }
    const problem = sessionNetworkProblem(spec, existing, config);
    if (problem) throw new ConfigError(problem);
    return subnetOf(config);
  }

  override async networkAddresses(name: string): Promise<{ subnet: string; gateway: string }> {
    const network = await this.inspectNetwork(name);
    const from = (network as { ConfigFrom?: { Network?: string } } | undefined)?.ConfigFrom
      ?.Network;
    if (network?.Scope !== 'swarm' || !from) return super.networkAddresses(name);
    return subnetOf(await this.inspectNetwork(from));
  }

  override async removeNetwork(name: string): Promise<void> {
    const network = await this.inspectNetwork(name);
    const from = (network as { ConfigFrom?: { Network?: string } } | undefined)?.ConfigFrom
      ?.Network;
    await super.removeNetwork(name);
    if (network?.Scope !== 'swarm' || !from) return;
    // The manager removes a swarm network from its nodes a moment after it answers: the
    // config-only network counts as in use until then.
    for (let attempt = 0; ; attempt++) {
      try {
        return await super.removeNetwork(from);
      } catch (error) {
        if (attempt >= 50 || !/in use/i.test((error as Error).message)) throw error;
        await sleep(300);
      }
    }
  }

  /**
   * The network named `name`. Docker's duplicate check is not atomic: processes that create it
   * at the same moment can make several, and then every lookup by name fails. All but the one
   * with the lowest id are removed, so each process keeps the same one.
   */
  private async onlyNetwork(name: string): Promise<NetworkInfo | undefined> {
    const [kept, ...extra] = (await this.swarm.listNetworks({ filters: { name: [name] } }))
      .filter((network) => network.Name === name)
      .sort((a, b) => a.Id.localeCompare(b.Id));
    for (const network of extra)
      await this.swarm
        .getNetwork(network.Id)
        .remove()
        .catch(() => {});
    return kept && this.inspectNetwork(kept.Id);
  }

  /** The network `name` (or id) on `docker`, the manager's by default; undefined when missing. */
  private inspectNetwork(name: string, docker = this.swarm): Promise<NetworkInfo | undefined> {
    return docker
      .getNetwork(name)
      .inspect()
      .catch((error: unknown) => (isMissing(error) ? undefined : Promise.reject(error)));
  }

  /**
   * A subnet from Docker's own address pools, as it would give a bridge network: a config-only
   * network gets none unless told, and its bridges would then take one per node lazily, after
   * the firewall's link rules were written for the subnet.
   */
  private async freeSubnet(name: string): Promise<{ subnet: string; gateway: string }> {
    const probe = `${name}-subnet-probe`;
    const created = await this.swarm.createNetwork({ Name: probe, Driver: 'bridge' });
    try {
      return subnetOf((await created.inspect()) as NetworkInfo);
    } finally {
      await created.remove().catch(() => {});
    }
  }
}
