import { describe, expect, it } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { dockerElsewhere } from '../../src/docker-connection.js';
import { dockerOptions } from '../../src/engine/docker-options.js';

describe('DOCKER_HOST as docker-modem options', () => {
  it('is the local socket unless set, and a unix:// path when given one', () => {
    expect(dockerOptions(loadConfig({}).docker)).toMatchObject({
      socketPath: '/var/run/docker.sock',
      host: undefined,
    });
    expect(dockerOptions('unix:///run/user/1000/docker.sock')).toMatchObject({
      socketPath: '/run/user/1000/docker.sock',
      host: undefined,
    });
  });

  it("takes Docker's default ports: 2375 plain, 2376 with TLS, 22 for ssh", async () => {
    expect(dockerOptions('tcp://docker.internal')).toMatchObject({
      protocol: 'http',
      host: 'docker.internal',
      port: 2375,
      socketPath: undefined,
    });
    const certs = await mkdtemp(join(tmpdir(), 'bindery-certs-'));
    for (const file of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(certs, file), file);
    const tls = loadConfig({
      DOCKER_HOST: 'tcp://docker.internal',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
    }).docker;
    expect(dockerOptions(tls)).toMatchObject({
      protocol: 'https',
      port: 2376,
      ca: Buffer.from('ca.pem'),
      cert: Buffer.from('cert.pem'),
      key: Buffer.from('key.pem'),
    });
    await writeFile(join(certs, 'known_hosts'), '');
    const ssh = loadConfig({
      DOCKER_HOST: 'ssh://builder@docker.internal',
      BINDERY_DOCKER_SSH_KEY: join(certs, 'key.pem'),
      BINDERY_DOCKER_SSH_KNOWN_HOSTS: join(certs, 'known_hosts'),
    }).docker;
    expect(dockerOptions(ssh)).toMatchObject({
      protocol: 'ssh',
      host: 'docker.internal',
      port: 22,
      username: 'builder',
      sshOptions: { privateKey: Buffer.from('key.pem'), hostVerifier: expect.any(Function) },
    });
  });

  it('refuses what the docker command would not take, naming the variable', () => {
    expect(() => loadConfig({ DOCKER_HOST: 'docker.internal:2375' })).toThrow(
      'DOCKER_HOST: must be unix:///path/docker.sock, tcp://host[:port] or ssh://user@host[:port], as for the docker command',
    );
    expect(() =>
      loadConfig({
        DOCKER_HOST: 'ssh://builder@docker.internal',
        BINDERY_DOCKER_SSH_KEY: '/no/such/key',
      }),
    ).toThrow(
      'BINDERY_DOCKER_SSH_KEY: cannot read /no/such/key (ENOENT); give the private key that ssh://builder@docker.internal accepts.',
    );
  });
});

describe('dockerElsewhere', () => {
  it('names a daemon on another machine, not one on loopback or a socket', () => {
    expect(dockerElsewhere(undefined)).toBeUndefined();
    expect(dockerElsewhere('unix:///var/run/docker.sock')).toBeUndefined();
    expect(dockerElsewhere('ssh://root@127.0.0.1:2222')).toBeUndefined();
    expect(dockerElsewhere('ssh://root@builder.internal')).toMatch(
      /^DOCKER_HOST ssh:\/\/root@builder\.internal is another machine/,
    );
  });
});
