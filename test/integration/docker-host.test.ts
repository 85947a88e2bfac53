// DOCKER_HOST as Docker's CLI takes it, for real: tcp:// with TLS through a TLS server of the
// test's own that demands a client certificate, and ssh:// through an sshd of the test's own;
// both lead to this machine's /var/run/docker.sock.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { compileBindery, runBindery } from '../helpers/bindery-command.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const prefix = `bindery-test/dh${randomBytes(4).toString('hex')}-`;
const local = new DockerEngine();
const built: string[] = [];
let scratch = '';

const openssl = (...args: string[]) => exec('openssl', args, { cwd: scratch });

/** A CA (`<name>-ca.pem`, `<name>-ca.key`) made with openssl. */
async function makeCa(name: string) {
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.pem`,
  );
}

/** A key and certificate `<name>.key` / `<name>.pem` signed by `ca`, for a server or a client. */
async function makeCert(name: string, ca: string, usage: 'serverAuth' | 'clientAuth') {
  await openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  const extensions = join(scratch, `${name}.ext`);
  await writeFile(
    extensions,
    `extendedKeyUsage=${usage}\n${usage === 'serverAuth' ? 'subjectAltName=IP:127.0.0.1\n' : ''}`,
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}-ca.pem`,
    '-CAkey',
    `${ca}-ca.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    extensions,
    '-out',
    `${name}.pem`,
  );
}

/** A DOCKER_CERT_PATH folder holding ca.pem, cert.pem and key.pem as Docker's CLI names them. */
async function certPath(name: string, files: { ca: string; cert?: string; key?: string }) {
  const dir = join(scratch, name);
  await mkdir(dir);
  await copyFile(join(scratch, files.ca), join(dir, 'ca.pem'));
  if (files.cert) await copyFile(join(scratch, files.cert), join(dir, 'cert.pem'));
  if (files.key) await copyFile(join(scratch, files.key), join(dir, 'key.pem'));
  return dir;
}

/** Runs the compiled `bindery` with `env` and this file's image prefix. */
const bindery = (env: Record<string, string>, ...args: string[]) =>
  runBindery({ BINDERY_IMAGE_PREFIX: prefix, ...env }, ...args);

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bindery-docker-host-'));
  await compileBindery();
}, 120_000);

afterAll(async () => {
  for (const image of built) await local.removeImage(image).catch(() => {});
  await rm(scratch, { recursive: true, force: true });
});

describe('DOCKER_HOST=tcp:// with DOCKER_TLS_VERIFY', () => {
  let server: Server;
  let port = 0;
  /** Connections whose client certificate the TLS server accepted. */
  let accepted = 0;
  const tlsEnv = (dir: string) => ({
    DOCKER_HOST: `tcp://127.0.0.1:${port}`,
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: dir,
  });

  beforeAll(async () => {
    await makeCa('daemon');
    await makeCa('stranger');
    await makeCert('server', 'daemon', 'serverAuth');
    await makeCert('client', 'daemon', 'clientAuth');
    await makeCert('impostor', 'stranger', 'clientAuth');
    // What dockerd --tlsverify does: only clients with a certificate of its CA get through.
    server = createServer(
      {
        key: await readFile(join(scratch, 'server.key')),
        cert: await readFile(join(scratch, 'server.pem')),
        ca: await readFile(join(scratch, 'daemon-ca.pem')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        accepted++;
        const docker = connect('/var/run/docker.sock');
        socket.pipe(docker).pipe(socket);
        socket.on('error', () => docker.destroy());
        docker.on('error', () => socket.destroy());
      },
    );
    server.on('tlsClientError', () => {});
    port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  }, 60_000);

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  test('bindery build works through a daemon that demands a client certificate', async () => {
    const dir = await certPath('good', {
      ca: 'daemon-ca.pem',
      cert: 'client.pem',
      key: 'client.key',
    });
    const before = accepted;
    const image = `${prefix}tls:v1`;
    const { code, stdout, stderr } = await bindery(
      tlsEnv(dir),
      'build',
      'test/fixtures/repos/default',
      '--image',
      image,
    );
    built.push(image);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout.trim().split('\n').at(-1)).toBe(image);
    expect(await local.imageExists(image)).toBe(true);
    // The build went through the TLS server, not around it.
    expect(accepted - before).toBeGreaterThan(0);
  }, 300_000);

  test('without a client certificate, bindery build says which file is missing and how to fix it', async () => {
    const dir = await certPath('ca-only', { ca: 'daemon-ca.pem' });
    const { code, stderr } = await bindery(tlsEnv(dir), 'build', 'test/fixtures/repos/default');
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `bindery: DOCKER_CERT_PATH: cannot read ${dir}/cert.pem, this client's certificate (ENOENT); put it there, or point DOCKER_CERT_PATH at the folder that holds ca.pem, cert.pem and key.pem.`,
    );
  }, 60_000);

  test("a client certificate the daemon's CA did not sign is refused, in a sentence", async () => {
    const dir = await certPath('impostor', {
      ca: 'daemon-ca.pem',
      cert: 'impostor.pem',
      key: 'impostor.key',
    });
    const engine = new DockerEngine(loadConfig(tlsEnv(dir)).docker);
    await expect(engine.ping()).rejects.toThrow(
      new RegExp(
        `^The Docker daemon at tcp://127\\.0\\.0\\.1:${port} refused the connection \\(.+\\); with DOCKER_TLS_VERIFY set, DOCKER_CERT_PATH's cert\\.pem and key\\.pem must be a client certificate the daemon's CA signed`,
      ),
    );
  });

  test('a daemon whose certificate ca.pem did not sign is not trusted', async () => {
    const dir = await certPath('wrong-ca', {
      ca: 'stranger-ca.pem',
      cert: 'client.pem',
      key: 'client.key',
    });
    const engine = new DockerEngine(loadConfig(tlsEnv(dir)).docker);
    await expect(engine.ping()).rejects.toThrow(
      `The Docker daemon at tcp://127.0.0.1:${port} sent a certificate this client does not trust (self-signed certificate in certificate chain); it must be signed by DOCKER_CERT_PATH's ca.pem and name the host of DOCKER_HOST.`,
    );
  });
});

describe('DOCKER_HOST=ssh://', () => {
  let sshd: ChildProcess | undefined;
  let port = 0;
  let sshdLog = '';
  const sshEnv = (knownHosts: string) => ({
    DOCKER_HOST: `ssh://root@127.0.0.1:${port}`,
    BINDERY_DOCKER_SSH_KEY: join(scratch, 'ssh', 'client'),
    BINDERY_DOCKER_SSH_KNOWN_HOSTS: knownHosts,
  });

  beforeAll(async () => {
    // openssh-server (deploy/setup.sh installs it); its daemon here runs with a config, host key
    // and authorized key of the test's own, on loopback only.
    expect(existsSync('/usr/sbin/sshd')).toBe(true);
    const dir = join(scratch, 'ssh');
    await mkdir(dir, { mode: 0o700 });
    const keygen = (file: string) =>
      exec('ssh-keygen', [
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-C',
        'bindery-test',
        '-f',
        join(dir, file),
      ]);
    await Promise.all([keygen('host'), keygen('client'), keygen('other-host')]);
    await copyFile(join(dir, 'client.pub'), join(dir, 'authorized_keys'));
    port = await freePort();
    const hostKey = (await readFile(join(dir, 'host.pub'), 'utf8')).split(' ').slice(0, 2);
    const otherKey = (await readFile(join(dir, 'other-host.pub'), 'utf8')).split(' ').slice(0, 2);
    await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey.join(' ')}\n`);
    await writeFile(join(dir, 'wrong_known_hosts'), `[127.0.0.1]:${port} ${otherKey.join(' ')}\n`);
    await writeFile(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        '',
      ].join('\n'),
    );
    // sshd refuses to start without its privilege separation directory (made by its service).
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]);
    sshd.stderr?.on('data', (chunk: Buffer) => (sshdLog += chunk.toString()));
    await waitFor(() => /Server listening/.test(sshdLog), `sshd to listen (${sshdLog})`, 20_000);
  }, 60_000);

  afterAll(() => {
    sshd?.kill('SIGTERM');
  });

  test('the engine reaches Docker through `docker system dial-stdio` on the ssh host', async () => {
    const engine = new DockerEngine(loadConfig(sshEnv(join(scratch, 'ssh', 'known_hosts'))).docker);
    await engine.ping();
    const base = loadConfig({}).baseImage;
    expect(await engine.imageExists(base)).toBe(await local.imageExists(base));
    const run = await engine.runToCompletion({
      image: base,
      cmd: ['echo', 'over ssh'],
      limits: { cpus: 1, memoryBytes: 256 * 2 ** 20 },
      timeoutMs: 60_000,
    });
    expect(run).toEqual({ exitCode: 0, output: 'over ssh\n' });
    expect(sshdLog).toMatch(/Accepted publickey for root/);

    // A whole build streams over it too: the context up, the log down.
    const image = `${prefix}ssh:v1`;
    const build = await bindery(
      sshEnv(join(scratch, 'ssh', 'known_hosts')),
      'build',
      'test/fixtures/repos/default',
      '--image',
      image,
    );
    built.push(image);
    expect({ code: build.code, stderr: build.code === 0 ? '' : build.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    expect(build.stdout.trim().split('\n').at(-1)).toBe(image);
    expect(await local.imageExists(image)).toBe(true);
  }, 300_000);

  test('a host key not in known_hosts is refused, in a sentence', async () => {
    const engine = new DockerEngine(
      loadConfig(sshEnv(join(scratch, 'ssh', 'wrong_known_hosts'))).docker,
    );
    await expect(engine.ping()).rejects.toThrow(
      `The ssh host of DOCKER_HOST ssh://root@127.0.0.1:${port} offered a key that is not in the known_hosts file (BINDERY_DOCKER_SSH_KNOWN_HOSTS); check the host, then add its key (ssh to it once, or ssh-keyscan).`,
    );
  }, 60_000);
});
