import Docker from 'dockerode';
import { ConfigError, UnavailableError } from '../errors.js';
import { dockerOptions } from './docker-options.js';

/** Node label: this node takes sessions (on any node carrying it, only those nodes do). */
export const SESSIONS_LABEL = 'bindery.sessions';
/** Node label: how to reach the node's own Docker daemon (a DOCKER_HOST value). */
export const DOCKER_HOST_LABEL = 'bindery.docker-host';

/**
 * The nodes of the swarm as Swarm sessions need them: where a session may be placed, and the
 * Docker daemon of the node it runs on (a task's address on a bridge network is known only to
 * its node). The manager's own node is reached through the manager's connection; another node
 * through its `bindery.docker-host` label (`docker node update --label-add
 * bindery.docker-host=tcp://node2:2376 node2`), with the manager's TLS or ssh settings.
 */
export class SwarmNodes {
  private localNode: Promise<string> | undefined;
  private readonly clients = new Map<string, Docker>();

  constructor(
    private readonly manager: Docker,
    private readonly connect: (host: string) => Docker = (host) => new Docker(dockerOptions(host)),
  ) {}

  /** The node id of the manager this engine talks to. */
  localId(): Promise<string> {
    this.localNode ??= this.manager.info().then((info: { Swarm?: { NodeID?: string } }) => {
      if (!info.Swarm?.NodeID) {
        throw new ConfigError(
          'BINDERY_ENGINE=swarm: this Docker daemon is in no swarm; run docker swarm init.',
        );
      }
      return info.Swarm.NodeID;
    });
    return this.localNode.catch((error: unknown) => {
      this.localNode = undefined;
      throw error;
    });
  }

  /**
   * Swarm placement constraints for a session: the nodes labelled `bindery.sessions=true` when
   * any is, else the manager's own node (whose bridge this host reaches without a route); never
   * a node in `avoid`.
   */
  async constraints(avoid: string[] = []): Promise<string[]> {
    const nodes = await this.manager.listNodes();
    const avoided = avoid.map((id) => `node.id!=${id}`);
    if (nodes.some((node) => node.Spec?.Labels?.[SESSIONS_LABEL] === 'true')) {
      return [`node.labels.${SESSIONS_LABEL}==true`, ...avoided];
    }
    return [`node.id==${await this.localId()}`, ...avoided];
  }

  /**
   * The labelled nodes (`bindery.sessions=true`) sessions may be placed on, each with its
   * daemon; a node without a `bindery.docker-host` label has none, and is listed with the
   * reason. None when no node is labelled: sessions then stay on the manager's own node.
   */
  async sessionNodes(): Promise<{ id: string; name: string; docker?: Docker; problem?: string }[]> {
    const nodes = (await this.manager.listNodes()).filter(
      (node) => node.Spec?.Labels?.[SESSIONS_LABEL] === 'true',
    );
    return Promise.all(
      nodes.map(async (node) => {
        const name = node.Description?.Hostname ?? node.ID!;
        try {
          return { id: node.ID!, name, docker: await this.dockerOf(node.ID!) };
        } catch (error) {
          return { id: node.ID!, name, problem: (error as Error).message };
        }
      }),
    );
  }

  /** The Docker daemon of node `nodeId`. */
  async dockerOf(nodeId: string): Promise<Docker> {
    if (nodeId === (await this.localId())) return this.manager;
    const node = await this.manager.getNode(nodeId).inspect();
    const host = (node.Spec?.Labels as Record<string, string> | undefined)?.[DOCKER_HOST_LABEL];
    if (!host) {
      throw new UnavailableError(
        `The swarm node ${node.Description?.Hostname ?? nodeId} (${nodeId}) takes sessions and has no ${DOCKER_HOST_LABEL} label ` +
          `saying where its Docker daemon answers; add it (docker node update --label-add ${DOCKER_HOST_LABEL}=<DOCKER_HOST> ${nodeId}).`,
      );
    }
    let client = this.clients.get(host);
    if (!client) {
      client = this.connect(host);
      this.clients.set(host, client);
    }
    return client;
  }

  /** The daemons of every node that may hold sessions: the manager's and each labelled one's. */
  async all(): Promise<Docker[]> {
    const nodes = await this.manager.listNodes();
    const others = await Promise.all(
      nodes
        .filter((node) => node.Spec?.Labels?.[DOCKER_HOST_LABEL])
        .map((node) => this.dockerOf(node.ID!)),
    );
    return [...new Set([this.manager, ...others])];
  }
}
