import { execFile } from 'node:child_process';
import type Docker from 'dockerode';
import type { DockerConnection } from '../docker-connection.js';

/**
 * docker-modem reads DOCKER_HOST, DOCKER_CERT_PATH and friends from process.env by itself and
 * lets given options win (node_modules/docker-modem/lib/modem.js, defaultOpts). Every option it
 * could take from there is given, so a connection is the configuration's alone.
 */
const UNSET: Docker.DockerOptions = {
  socketPath: undefined,
  host: undefined,
  port: undefined,
  protocol: undefined,
  username: undefined,
  ca: undefined,
  cert: undefined,
  key: undefined,
};

/** docker-modem's options for a Docker connection: a socket, HTTP, HTTPS or ssh. */
export function dockerOptions(
  connection: DockerConnection | string | undefined,
): Docker.DockerOptions {
  const { host, tls, ssh } =
    typeof connection === 'object'
      ? connection
      : { host: connection, tls: undefined, ssh: undefined };
  if (!host || host.startsWith('unix://')) {
    return { ...UNSET, socketPath: host?.slice('unix://'.length) || '/var/run/docker.sock' };
  }
  const url = new URL(host);
  if (url.protocol === 'ssh:') {
    const port = Number(url.port || 22);
    return {
      ...UNSET,
      protocol: 'ssh',
      host: url.hostname,
      port,
      username: decodeURIComponent(url.username) || undefined,
      // docker-modem runs `docker system dial-stdio` on the host over ssh2, as Docker's CLI does
      // over ssh; ssh2 checks no host key unless asked, so known_hosts is asked here.
      sshOptions: {
        agent: ssh?.agent,
        privateKey: ssh?.privateKey,
        hostVerifier: ssh ? knownHostVerifier(url.hostname, port, ssh.knownHosts) : undefined,
      },
    };
  }
  if (tls) {
    return { ...UNSET, protocol: 'https', host: url.hostname, port: url.port || 2376, ...tls };
  }
  return { ...UNSET, protocol: 'http', host: url.hostname, port: url.port || 2375 };
}

/**
 * An ssh2 host verifier that accepts the host's key when OpenSSH's `ssh-keygen -F` finds it in
 * `knownHosts` (hashed entries and `[host]:port` names as ssh writes them), and not `@revoked`.
 */
export function knownHostVerifier(hostname: string, port: number, knownHosts: string) {
  const name = port === 22 ? hostname : `[${hostname}]:${port}`;
  return (key: Buffer, verify: (valid: boolean) => void): void => {
    execFile('ssh-keygen', ['-F', name, '-f', knownHosts], (error, stdout) => {
      // ssh-keygen exits 1 when the host has no entry.
      if (error && !stdout) return verify(false);
      const presented = key.toString('base64');
      const entries = stdout
        .split('\n')
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => line.trim().split(/\s+/));
      const listed = (marker: string | undefined) =>
        entries.some((fields) =>
          marker ? fields[0] === marker && fields[3] === presented : fields[2] === presented,
        );
      verify(listed(undefined) && !listed('@revoked'));
    });
  };
}

/** Node's codes for a TLS peer that refused us, and for a certificate we could not trust. */
const REFUSED_US = /^ERR_SSL_.*ALERT|^ERR_SSL_TLSV1_ALERT|^ECONNRESET$/;
const UNTRUSTED =
  /CERT|SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID|SIGNATURE_FAILURE/;

/** One sentence for a Docker daemon that did not answer `ping`: what went wrong and what to check. */
export function dockerUnreachable(address: string, error: Error): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const why = error.message;
  if (address.startsWith('tcp://')) {
    if (UNTRUSTED.test(code)) {
      return `The Docker daemon at ${address} sent a certificate this client does not trust (${why}); it must be signed by DOCKER_CERT_PATH's ca.pem and name the host of DOCKER_HOST.`;
    }
    if (REFUSED_US.test(code)) {
      return `The Docker daemon at ${address} refused the connection (${why}); with DOCKER_TLS_VERIFY set, DOCKER_CERT_PATH's cert.pem and key.pem must be a client certificate the daemon's CA signed, and without it the daemon must take plain HTTP.`;
    }
  }
  if (address.startsWith('ssh://')) {
    if (why.startsWith('Host denied')) {
      return `The ssh host of DOCKER_HOST ${address} offered a key that is not in the known_hosts file (BINDERY_DOCKER_SSH_KNOWN_HOSTS); check the host, then add its key (ssh to it once, or ssh-keyscan).`;
    }
    if (why.includes('authentication methods failed')) {
      return `The ssh host of DOCKER_HOST ${address} did not accept the login (${why}); give a key it accepts with BINDERY_DOCKER_SSH_KEY or SSH_AUTH_SOCK.`;
    }
    return `Docker at ${address} does not answer over ssh (${why}); the host must run sshd and have the docker command, which Bindery runs there as \`docker system dial-stdio\`.`;
  }
  return `Docker at ${address} does not answer (${why}); is dockerd running?`;
}
