import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './errors.js';

/**
 * How to reach the Docker daemon, read from Docker's own variables as its CLI reads them
 * (https://docs.docker.com/reference/cli/docker/#environment-variables). The engine hands it
 * to docker-modem as its options (src/engine/docker-options.ts).
 */
export interface DockerConnection {
  /** DOCKER_HOST: `unix://…`, `tcp://…` or `ssh://…`; unset is the local socket. */
  host: string | undefined;
  /** For `tcp://` with DOCKER_TLS_VERIFY: the PEM files of DOCKER_CERT_PATH. */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /** For `ssh://`: the agent's socket and/or a private key, and the known_hosts file to check. */
  ssh?: { agent: string | undefined; privateKey: Buffer | undefined; knownHosts: string };
}

/** The variables read here, under their own names. */
export interface DockerVariables {
  DOCKER_HOST?: string | undefined;
  DOCKER_TLS_VERIFY?: string | undefined;
  DOCKER_CERT_PATH?: string | undefined;
  SSH_AUTH_SOCK?: string | undefined;
  BINDERY_DOCKER_SSH_KEY?: string | undefined;
  BINDERY_DOCKER_SSH_KNOWN_HOSTS?: string | undefined;
}

/** ssh's own default identities, in the order it offers them. */
const SSH_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

function readPem(variable: string, file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(
      `${variable}: cannot read ${file}, ${what} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); put it there, or point ${variable} at the folder that holds ca.pem, cert.pem and key.pem.`,
    );
  }
}

/**
 * The Docker connection of DOCKER_HOST and the variables that go with it. Files are read now,
 * so a missing certificate or key is named at start rather than at the first build.
 */
export function dockerConnection(e: DockerVariables): DockerConnection {
  const host = e.DOCKER_HOST;
  if (host?.startsWith('tcp://') && e.DOCKER_TLS_VERIFY !== undefined) {
    // Docker's CLI turns TLS on for any non-empty DOCKER_TLS_VERIFY, "0" included.
    const dir = e.DOCKER_CERT_PATH ?? join(homedir(), '.docker');
    const variable = e.DOCKER_CERT_PATH ? 'DOCKER_CERT_PATH' : 'DOCKER_TLS_VERIFY';
    return {
      host,
      tls: {
        ca: readPem(variable, join(dir, 'ca.pem'), "the CA that signed the daemon's certificate"),
        cert: readPem(variable, join(dir, 'cert.pem'), "this client's certificate"),
        key: readPem(variable, join(dir, 'key.pem'), "this client's private key"),
      },
    };
  }
  if (host?.startsWith('ssh://')) {
    const ssh = join(homedir(), '.ssh');
    const keyFile =
      e.BINDERY_DOCKER_SSH_KEY ?? SSH_KEYS.map((name) => join(ssh, name)).find(existsSync);
    let privateKey: Buffer | undefined;
    if (keyFile !== undefined) {
      try {
        privateKey = readFileSync(keyFile);
      } catch (error) {
        throw new ConfigError(
          `BINDERY_DOCKER_SSH_KEY: cannot read ${keyFile} (${(error as NodeJS.ErrnoException).code}); give the private key that ${host} accepts.`,
        );
      }
    }
    if (!privateKey && !e.SSH_AUTH_SOCK) {
      throw new ConfigError(
        `DOCKER_HOST ${host} needs a way to log in: set SSH_AUTH_SOCK (a running ssh-agent) or BINDERY_DOCKER_SSH_KEY (a private key file); none of ~/.ssh/${SSH_KEYS.join(', ')} exists.`,
      );
    }
    const knownHosts = e.BINDERY_DOCKER_SSH_KNOWN_HOSTS ?? join(ssh, 'known_hosts');
    if (!existsSync(knownHosts)) {
      throw new ConfigError(
        `DOCKER_HOST ${host}: there is no ${knownHosts} to check the host's key against; run ssh to the host once, or ssh-keyscan it into that file, or set BINDERY_DOCKER_SSH_KNOWN_HOSTS.`,
      );
    }
    return { host, ssh: { agent: e.SSH_AUTH_SOCK, privateKey, knownHosts } };
  }
  return { host };
}

/** Names of this machine in a DOCKER_HOST: a daemon there shares its iptables. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * A sentence when DOCKER_HOST names another machine: the sandbox's firewall is installed with
 * this machine's iptables, so that daemon's sessions and builds would run without it.
 */
export function dockerElsewhere(host: string | undefined): string | undefined {
  if (!host || host.startsWith('unix://')) return undefined;
  if (LOOPBACK.test(new URL(host).hostname)) return undefined;
  return `DOCKER_HOST ${host} is another machine, and the sandbox's firewall is installed with this machine's iptables: its sessions and builds would run without it. Run this process on that host (DOCKER_HOST unset), or set BINDERY_SANDBOX_OPTOUT=1 to run them unsandboxed (for development only).`;
}
