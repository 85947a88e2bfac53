import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseByteSize } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw. */
function configErrorFor(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  const config = loadConfig({});

  it('serves one machine out of the box with the documented defaults', () => {
    expect(config.port).toBe(8585);
    expect(config.publicUrl).toBe('http://localhost:8585');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.docker).toEqual({ host: undefined });
    expect(config.imagePrefix).toBe('bindery/r2d-');
    expect(config.baseImage).toBe('bindery/base:bookworm');
    expect(config.registry).toBeUndefined();
  });

  it('gives each session 1 CPU, 1 GiB, 512 processes and runc', () => {
    expect(config.session).toEqual({ cpus: 1, memoryBytes: GiB, pidsLimit: 512, runtime: 'runc' });
  });

  it('culls after 600 s idle and 21600 s of age', () => {
    expect(config.idleTimeoutSeconds).toBe(600);
    expect(config.maxAgeSeconds).toBe(21600);
    expect(config.downloadMaxBytes).toBe(100 * 2 ** 20);
  });

  it('lets sessions reach ports 80 and 443 only, with no exceptions', () => {
    expect(config.egress).toEqual({ ports: [80, 443], allowCidrs: [] });
  });

  it('allows no private git hosts and limits clones to 300 s and 1 GiB', () => {
    expect(config.git).toEqual({ allowedHosts: [], cloneTimeoutMs: 300_000, cloneMaxBytes: GiB });
  });

  it('limits builds to an hour and 10 MiB of log, one at a time, with public micromamba and CRAN', () => {
    expect(config.build).toEqual({
      concurrency: 1,
      stallTimeoutMs: 30_000,
      timeoutMs: 3_600_000,
      logMaxBytes: 10 * MiB,
      network: undefined,
      pipIndexUrl: undefined,
      pipExtraIndexUrl: undefined,
      micromambaUrl: 'https://micro.mamba.pm/api/micromamba/linux-64/latest',
      cranMirror: 'https://cloud.r-project.org',
      indexPort: 8586,
    });
  });

  it('caps sessions at 50 in all and 10 per client, with no per-repository cap', () => {
    expect(config.quotas).toMatchObject({
      maxSessions: 50,
      maxSessionsPerRepo: 0,
      maxSessionsPerClient: 10,
    });
    const uncapped = loadConfig({ BINDERY_MAX_SESSIONS_PER_CLIENT: '0' }).quotas;
    expect(uncapped.maxSessionsPerClient).toBe(0);
    expect(configErrorFor({ BINDERY_MAX_SESSIONS_PER_CLIENT: '-1' }).message).toMatch(
      /BINDERY_MAX_SESSIONS_PER_CLIENT/,
    );
  });

  it('reads process.env when called without an argument', () => {
    const saved = process.env.PORT;
    process.env.PORT = '9123';
    try {
      expect(loadConfig().port).toBe(9123);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });
});

describe('loadConfig reads the environment', () => {
  it('uses every variable it is given', () => {
    const config = loadConfig({
      PORT: '9000',
      BINDERY_PUBLIC_URL: 'https://binder.example.org/',
      REDIS_URL: 'redis://redis:6380/2',
      DOCKER_HOST: 'tcp://docker:2375',
      BINDERY_ENGINE: 'docker',
      BINDERY_IMAGE_PREFIX: 'registry.example.org/binder/r2d-',
      BINDERY_BASE_IMAGE: 'example/base:1',
      BINDERY_REGISTRY: 'registry.example.org',
      BINDERY_IMAGE_BUDGET: '200GiB',
      BINDERY_IMAGE_MAX_COUNT: '1000',
      BINDERY_DISK_HEADROOM: '20g',
      BINDERY_SESSION_CPUS: '0.5',
      BINDERY_SESSION_MEMORY: '512m',
      BINDERY_PIDS_LIMIT: '128',
      BINDERY_IDLE_TIMEOUT: '60',
      BINDERY_MAX_AGE: '3600',
      BINDERY_DOWNLOAD_MAX_SIZE: '20m',
      BINDERY_EGRESS_PORTS: '80, 443 ,8080',
      BINDERY_EGRESS_ALLOW_CIDRS: '10.1.0.0/16,192.168.5.0/24',
      BINDERY_GIT_ALLOWED_HOSTS: 'Git.Internal, gitlab.corp:8443',
      BINDERY_RUNTIME: 'runsc',
      BINDERY_CLONE_TIMEOUT: '30',
      BINDERY_CLONE_MAX_SIZE: '100m',
      BINDERY_BUILD_TIMEOUT: '120',
      BINDERY_BUILD_LOG_MAX: '1m',
      BINDERY_BUILD_NETWORK: 'bindery-build',
      BINDERY_BUILD_INDEX_PORT: '3142',
      PIP_INDEX_URL: 'http://127.0.0.1:3141/simple',
      PIP_EXTRA_INDEX_URL: 'http://mirror.example.org/simple',
      BINDERY_MICROMAMBA_URL: 'http://mirror.example.org/micromamba.tar.bz2',
      BINDERY_CRAN_MIRROR: 'https://cran.example.org///',
      PIP_TRUSTED_HOST: 'mirror.example.org',
      BINDERY_BUILD_CONCURRENCY: '2',
      BINDERY_WORKER_STALL_TIMEOUT: '5',
      BINDERY_SESSION_NETWORK: 'bindery-net',
      BINDERY_SANDBOX_OPTOUT: '1',
      BINDERY_MAX_SESSIONS: '20',
      BINDERY_MAX_SESSIONS_PER_REPO: '3',
      BINDERY_MAX_SESSIONS_PER_CLIENT: '4',
      BINDERY_LAUNCH_RATE_LIMIT: '5',
      BINDERY_BANNED_SPECS: '^gh/evil/,^git/',
      BINDERY_ALLOWED_SPECS: '^gh/',
      BINDERY_API_TOKENS: 'secret-one,secret-two',
      GHE_HOST: 'github.corp',
      GHE_PROTOCOL: 'http',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
    });
    expect(config).toEqual({
      port: 9000,
      publicUrl: 'https://binder.example.org',
      redisUrl: 'redis://redis:6380/2',
      docker: { host: 'tcp://docker:2375' },
      engine: 'docker',
      imagePrefix: 'registry.example.org/binder/r2d-',
      baseImage: 'example/base:1',
      registry: 'registry.example.org',
      images: { budgetBytes: 200 * GiB, maxCount: 1000, diskHeadroomBytes: 20 * GiB },
      session: { cpus: 0.5, memoryBytes: 512 * MiB, pidsLimit: 128, runtime: 'runsc' },
      idleTimeoutSeconds: 60,
      maxAgeSeconds: 3600,
      downloadMaxBytes: 20 * MiB,
      egress: { ports: [80, 443, 8080], allowCidrs: ['10.1.0.0/16', '192.168.5.0/24'] },
      sandbox: { network: 'bindery-net', optOut: true },
      git: {
        allowedHosts: ['git.internal', 'gitlab.corp:8443'],
        cloneTimeoutMs: 30_000,
        cloneMaxBytes: 100 * MiB,
      },
      build: {
        concurrency: 2,
        stallTimeoutMs: 5_000,
        timeoutMs: 120_000,
        logMaxBytes: MiB,
        network: 'bindery-build',
        pipIndexUrl: 'http://127.0.0.1:3141/simple',
        pipExtraIndexUrl: 'http://mirror.example.org/simple',
        pipTrustedHost: 'mirror.example.org',
        micromambaUrl: 'http://mirror.example.org/micromamba.tar.bz2',
        cranMirror: 'https://cran.example.org',
        indexPort: 3142,
      },
      quotas: {
        maxSessions: 20,
        maxSessionsPerRepo: 3,
        maxSessionsPerClient: 4,
        launchesPerMinute: 5,
        statusChecksPerMinute: 60,
        bannedSpecs: [/^gh\/evil\//, /^git\//],
        allowedSpecs: [/^gh\//],
      },
      apiTokens: ['secret-one', 'secret-two'],
      githubUrl: 'http://github.corp',
      log: { level: 'debug', format: 'json' },
    });
  });

  it('reads LOG_FORMAT as Probot does: pretty unless NODE_ENV is production', () => {
    expect(loadConfig({}).log).toEqual({ level: 'info', format: 'pretty' });
    expect(loadConfig({ NODE_ENV: 'production' }).log.format).toBe('json');
    expect(loadConfig({ NODE_ENV: 'production', LOG_FORMAT: 'pretty' }).log.format).toBe('pretty');
    expect(() => loadConfig({ LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT: .*"json".*"pretty"/);
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL: .*"debug"/);
  });

  it('names a spec pattern that is not a regular expression', () => {
    expect(() => loadConfig({ BINDERY_BANNED_SPECS: 'gh/(unclosed' })).toThrow(
      /BINDERY_BANNED_SPECS: "gh\/\(unclosed" is not a regular expression/,
    );
  });

  it('derives the public URL from PORT when BINDERY_PUBLIC_URL is unset', () => {
    expect(loadConfig({ PORT: '8080' }).publicUrl).toBe('http://localhost:8080');
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ PORT: '', BINDERY_SESSION_MEMORY: '', BINDERY_EGRESS_PORTS: '' });
    expect(config.port).toBe(8585);
    expect(config.session.memoryBytes).toBe(GiB);
    expect(config.egress.ports).toEqual([80, 443]);
  });

  it('ignores variables that are not its own', () => {
    expect(() => loadConfig({ HOME: '/root', BINDERY_UNKNOWN: 'x', PATH: '' })).not.toThrow();
  });
});

describe('loadConfig result is frozen', () => {
  const config = loadConfig({ BINDERY_GIT_ALLOWED_HOSTS: 'git.internal' });

  it('cannot be changed at the top level or in its groups', () => {
    for (const part of [config, config.session, config.egress, config.git, config.build]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.session as { memoryBytes: number }).memoryBytes = 0;
    }).toThrow(TypeError);
    expect(config.port).toBe(8585);
    expect(config.session.memoryBytes).toBe(GiB);
  });

  it('cannot have hosts or ports added to its lists', () => {
    expect(() => (config.git.allowedHosts as string[]).push('169.254.169.254')).toThrow(TypeError);
    expect(() => (config.egress.ports as number[]).push(22)).toThrow(TypeError);
    expect(() => (config.egress.allowCidrs as string[]).push('0.0.0.0/0')).toThrow(TypeError);
    expect(config.git.allowedHosts).toEqual(['git.internal']);
    expect(config.egress.ports).toEqual([80, 443]);
    expect(config.egress.allowCidrs).toEqual([]);
  });
});

describe('loadConfig errors name the variable', () => {
  it('PORT=abc', () => {
    const error = configErrorFor({ PORT: 'abc' });
    expect(error.message).toMatch(/^Bindery's environment is not valid:/);
    expect(error.message).toMatch(/^ {2}PORT: /m);
    expect(error.name).toBe('ConfigError');
  });

  it.each([['0'], ['65536'], ['80.5'], ['-1']])('PORT=%s', (port) => {
    expect(configErrorFor({ PORT: port }).message).toMatch(/^ {2}PORT: /m);
  });

  it('BINDERY_SESSION_MEMORY=lots, with how to write a size', () => {
    const error = configErrorFor({ BINDERY_SESSION_MEMORY: 'lots' });
    expect(error.message).toContain(
      'BINDERY_SESSION_MEMORY: "lots" is not a size; write it like 1g, 512m or 1048576',
    );
  });

  it.each(['BINDERY_SESSION_MEMORY', 'BINDERY_CLONE_MAX_SIZE', 'BINDERY_BUILD_LOG_MAX'])(
    '%s=0 is refused (Docker reads a memory limit of 0 as no limit at all)',
    (name) => {
      const error = configErrorFor({ [name]: '0' });
      expect(error.message).toContain(`${name}: "0" is no bytes at all`);
    },
  );

  it('every wrong variable at once, one per line', () => {
    const error = configErrorFor({
      PORT: 'abc',
      BINDERY_SESSION_MEMORY: 'lots',
      BINDERY_RUNTIME: 'kata',
      BINDERY_IDLE_TIMEOUT: '-5',
    });
    const lines = error.message.split('\n').slice(1);
    expect(lines.map((line) => line.trim().split(':')[0])).toEqual(
      expect.arrayContaining([
        'PORT',
        'BINDERY_SESSION_MEMORY',
        'BINDERY_RUNTIME',
        'BINDERY_IDLE_TIMEOUT',
      ]),
    );
    expect(lines).toHaveLength(4);
  });

  it.each([
    ['BINDERY_RUNTIME', 'kata'],
    ['BINDERY_PUBLIC_URL', 'not a url'],
    ['PIP_INDEX_URL', 'localhost/simple'],
    ['BINDERY_CRAN_MIRROR', 'cran'],
    ['BINDERY_SESSION_CPUS', '0'],
    ['BINDERY_SESSION_CPUS', 'two'],
    ['BINDERY_PIDS_LIMIT', '1.5'],
    ['BINDERY_IDLE_TIMEOUT', '-5'],
    ['BINDERY_MAX_AGE', '0'],
    ['BINDERY_CLONE_TIMEOUT', 'Infinity'],
    ['BINDERY_BUILD_LOG_MAX', '10 megabytes'],
  ])('%s=%s', (name, value) => {
    expect(configErrorFor({ [name]: value }).message).toMatch(new RegExp(`^ {2}${name}: `, 'm'));
  });

  it('BINDERY_IMAGE_PREFIX must be a lowercase Docker repository prefix', () => {
    expect(configErrorFor({ BINDERY_IMAGE_PREFIX: 'Bindery/' }).message).toContain(
      'BINDERY_IMAGE_PREFIX: must be a lowercase Docker repository prefix',
    );
  });

  it.each(['80,abc', '0', '65536', '443,22.5'])('BINDERY_EGRESS_PORTS=%s', (ports) => {
    expect(configErrorFor({ BINDERY_EGRESS_PORTS: ports }).message).toBe(
      `BINDERY_EGRESS_PORTS: "${ports}" must be TCP ports`,
    );
  });
});

describe('parseByteSize', () => {
  it.each([
    ['1g', GiB],
    ['1G', GiB],
    ['1gb', GiB],
    ['1GiB', GiB],
    ['1.5g', 1.5 * GiB],
    ['512m', 512 * MiB],
    ['512MB', 512 * MiB],
    ['100k', 100 * 1024],
    ['1048576', MiB],
    ['1048576b', MiB],
    [' 2m ', 2 * MiB],
    ['1 g', GiB],
    ['2t', 2 * 1024 * GiB],
    ['1TiB', 1024 * GiB],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it('rounds fractions to whole bytes', () => {
    expect(parseByteSize('0.5k')).toBe(512);
    expect(parseByteSize('1.0000001k')).toBe(1024);
  });

  it.each(['', 'lots', '1p', '-1', '1e3', 'g', '1.g', '1,5g', '1gg'])('refuses %j', (text) => {
    expect(() => parseByteSize(text)).toThrow(
      `"${text}" is not a size; write it like 1g, 512m or 1048576`,
    );
  });
});

describe('the GitHub App settings', () => {
  const key = generateKeyPairSync('rsa', {
    modulusLength: 1024,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;

  it('is off when none of its variables is set', () => {
    expect(loadConfig({}).githubApp).toBeUndefined();
  });

  it("reads Probot's names, the key escaped on one line or from a file", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bindery-key-'));
    writeFileSync(join(dir, 'key.pem'), key);
    const fromText = loadConfig({
      APP_ID: '12',
      PRIVATE_KEY: key.replace(/\n/g, '\\n'),
      WEBHOOK_SECRET: 's',
    });
    const fromFile = loadConfig({
      APP_ID: '12',
      PRIVATE_KEY_PATH: join(dir, 'key.pem'),
      WEBHOOK_SECRET: 's',
    });
    expect(fromText.githubApp).toEqual({
      appId: 12,
      privateKey: key,
      webhookSecret: 's',
    });
    expect(fromFile.githubApp?.privateKey).toBe(key);
  });

  it('names what is missing when only some are set', () => {
    expect(() => loadConfig({ APP_ID: '12' })).toThrow(
      /needs PRIVATE_KEY or PRIVATE_KEY_PATH and WEBHOOK_SECRET too/,
    );
    expect(() =>
      loadConfig({ APP_ID: '12', PRIVATE_KEY: 'nonsense', WEBHOOK_SECRET: 's' }),
    ).toThrow(
      /PRIVATE_KEY \/ PRIVATE_KEY_PATH: The contents of "env.PRIVATE_KEY" could not be validated/,
    );
    expect(() =>
      loadConfig({ APP_ID: '12', PRIVATE_KEY_PATH: '/nonexistent.pem', WEBHOOK_SECRET: 's' }),
    ).toThrow(/does not exists at path/);
  });
});

describe('BINDERY_SESSION_HOST', () => {
  it('is unset by default: sessions share the service origin', () => {
    expect(loadConfig({}).sessionHost).toBeUndefined();
  });

  it.each([
    ['{session}.sessions.example.org', '{session}.sessions.example.org'],
    ['{session}.Sessions.Example.org:8443', '{session}.sessions.example.org:8443'],
    ['{session}.localhost', '{session}.localhost'],
  ])('reads %s', (pattern, read) => {
    expect(loadConfig({ BINDERY_SESSION_HOST: pattern }).sessionHost).toBe(read);
  });

  it.each([
    'sessions.example.org',
    '{session}',
    'x{session}.example.org',
    'a.{session}.example.org',
    '{session}.example.org/path',
    'https://{session}.example.org',
    '{session}.exa_mple.org',
  ])('refuses %s', (pattern) => {
    expect(configErrorFor({ BINDERY_SESSION_HOST: pattern }).message).toContain(
      'BINDERY_SESSION_HOST: must be a host name whose first label is {session}',
    );
  });

  it('refuses a pattern under which the service host itself would name a session', () => {
    expect(
      configErrorFor({
        BINDERY_PUBLIC_URL: 'https://binder.example.org',
        BINDERY_SESSION_HOST: '{session}.example.org',
      }).message,
    ).toMatch(/^BINDERY_SESSION_HOST: .*covers the service's own host binder\.example\.org/);
    expect(
      loadConfig({
        BINDERY_PUBLIC_URL: 'https://binder.example.org',
        BINDERY_SESSION_HOST: '{session}.binder.example.org',
      }).sessionHost,
    ).toBe('{session}.binder.example.org');
  });
});
