/**
 * Credentials of a private package index (`PIP_INDEX_URL=https://user:password@host/simple/`)
 * must never reach what a build leaves behind or shows: the image's history (`docker history
 * --no-trunc`, where Docker's classic builder records every build argument a RUN step used),
 * its configuration (`docker inspect`), or the build log, which is public, even when the
 * repository's own postBuild prints `$PIP_INDEX_URL` on purpose. pip must still install from
 * both indexes, PIP_INDEX_URL and PIP_EXTRA_INDEX_URL, each asking for its own basic credentials.
 *
 * The indexes are this test's, on the gateway of a network of its own (10.245.1.0/24); the
 * primary one serves made-up packages by relative links, the extra one real wheels from the
 * test wheelhouse by absolute links to its own origin, as some indexes write them. The fixture
 * is built twice: on that network, and as the service builds, on a build network of the
 * sandbox's own behind its firewall, where a build reaches no private address (so not the
 * indexes) and of the host only the forwarder's port.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { BuildEvent } from '../../src/build-event.js';
import { Builder, type BuildResult } from '../../src/build/builder.js';
import { INDEX_FORWARDER_HOST } from '../../src/build/index-access.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { prepareSandbox, type PreparedSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { INDEX_PACKAGES } from '../helpers/fixture-packages.js';
import { startPackageIndex, type PackageIndex } from '../helpers/package-index.js';
import { freePort } from '../helpers/free-port.js';
import { ensureWheelhouse } from '../helpers/wheelhouse.js';
import { quietLog } from '../helpers/capture-log.js';

const exec = promisify(execFile);
const FIXTURE = fileURLToPath(new URL('../fixtures/repos/index-credentials', import.meta.url));
const RUN_ID = randomBytes(4).toString('hex');
const NETWORK = `bindery-test-index-credentials-${RUN_ID}`;
const SUBNET = '10.245.1.0/24';
const GATEWAY = '10.245.1.1';
const BUILD_TIMEOUT_MS = 300_000;
const PRIMARY = { username: `primary-user-${RUN_ID}`, password: `primary-pw-${RUN_ID}` };
const EXTRA = { username: `extra-user-${RUN_ID}`, password: `extra-pw-${RUN_ID}` };
const SECRETS = [PRIMARY.username, PRIMARY.password, EXTRA.username, EXTRA.password];

const engine = new DockerEngine(process.env.DOCKER_HOST);
let primary: PackageIndex | undefined;
let extra: PackageIndex | undefined;
let result: BuildResult | undefined;
let failure: unknown;
let builder: Builder;
const extraImages: string[] = [];
const extraDirs: string[] = [];
const events: BuildEvent[] = [];

const withCredentials = (url: string, { username, password }: typeof PRIMARY) => {
  const withUser = new URL(url);
  withUser.username = username;
  withUser.password = password;
  return withUser.href;
};
const logOf = () => events.map((event) => event.message).join('');
/** The secrets that `text` holds (none, when nothing leaked). */
const leaked = (text: string) => SECRETS.filter((secret) => text.includes(secret));

function built(): BuildResult {
  if (result) return result;
  throw new Error(
    `the fixture did not build: ${String(failure)}\n--- end of its log ---\n${logOf().split('\n').slice(-40).join('\n')}`,
  );
}

beforeAll(async () => {
  await engine.ping();
  await exec('docker', [
    'network',
    'create',
    '--driver',
    'bridge',
    '--subnet',
    SUBNET,
    '--gateway',
    GATEWAY,
    '--label',
    'bindery.kind=build',
    NETWORK,
  ]);
  primary = await startPackageIndex({ host: GATEWAY, packages: INDEX_PACKAGES, auth: PRIMARY });
  extra = await startPackageIndex({
    host: GATEWAY,
    packages: [],
    wheelhouse: await ensureWheelhouse(),
    auth: EXTRA,
    absoluteLinks: true,
  });
  const config = loadConfig({
    DOCKER_HOST: process.env.DOCKER_HOST,
    BINDERY_IMAGE_PREFIX: `bindery-test/index-credentials-${RUN_ID}-`,
    BINDERY_BASE_IMAGE: process.env.BINDERY_BASE_IMAGE,
    BINDERY_BUILD_TIMEOUT: String(BUILD_TIMEOUT_MS / 1000),
    BINDERY_BUILD_NETWORK: NETWORK,
    PIP_INDEX_URL: withCredentials(primary.url, PRIMARY),
    PIP_EXTRA_INDEX_URL: withCredentials(extra.url, EXTRA),
    // Plain http off loopback: pip uses such an index only for a trusted host.
    PIP_TRUSTED_HOST: GATEWAY,
    // Any free port: another test's forwarder may hold the default one.
    BINDERY_BUILD_INDEX_PORT: '0',
  });
  builder = new Builder({ engine, config });
  try {
    result = await builder.build(parseSource(FIXTURE), {
      onEvent: (event) => events.push(event),
    });
  } catch (error) {
    failure = error;
  }
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  if (result) await engine.removeImage(result.imageName);
  for (const image of extraImages) await engine.removeImage(image);
  for (const dir of extraDirs) await rm(dir, { recursive: true, force: true });
  await primary?.close();
  await extra?.close();
  await exec('docker', ['network', 'rm', NETWORK]).catch(() => {});
}, 60_000);

test(
  'pip installs from both private indexes, PIP_INDEX_URL and PIP_EXTRA_INDEX_URL',
  async () => {
    const { imageName } = built();
    const verified = await engine.runToCompletion({
      image: imageName,
      cmd: ['./verify'],
      limits: { cpus: 1, memoryBytes: 2 ** 30 },
      networkDisabled: true,
      timeoutMs: 60_000,
    });
    expect(verified).toEqual({
      exitCode: 0,
      output: expect.stringContaining('index-credentials ok'),
    });
    // Each package came from its own index, with that index's credentials.
    const served = (index: PackageIndex, file: RegExp) =>
      index.requests.filter((path, i) => file.test(path) && index.authorizations[i] !== '');
    expect(served(primary!, /^\/files\/bindery_hello-1\.0-/)).toHaveLength(1);
    expect(served(primary!, /^\/files\/bindery_greeting-1\.0-/)).toHaveLength(1);
    expect(served(extra!, /^\/files\/pathspec-1\.1\.1-/)).toHaveLength(1);
  },
  BUILD_TIMEOUT_MS,
);

test(
  'the credentials are not in the image history (docker history --no-trunc)',
  async () => {
    const { imageName } = built();
    const { stdout } = await exec('docker', [
      'history',
      '--no-trunc',
      '--format',
      '{{.CreatedBy}}',
      imageName,
    ]);
    // The history is read for real: it holds the rendered steps.
    expect(stdout).toContain('pip install');
    expect({ leaked: leaked(stdout), history: stdout }).toEqual({
      leaked: [],
      history: expect.any(String),
    });
  },
  BUILD_TIMEOUT_MS,
);

test(
  'the credentials are not in the image configuration (docker inspect: Env, labels, all of it)',
  async () => {
    const { imageName } = built();
    const { stdout } = await exec('docker', ['image', 'inspect', imageName]);
    expect(JSON.parse(stdout)[0].Config.Labels['bindery.kind']).toBe('build');
    expect({ leaked: leaked(stdout), inspect: stdout }).toEqual({
      leaked: [],
      inspect: expect.any(String),
    });
  },
  BUILD_TIMEOUT_MS,
);

test(
  'a postBuild that prints $PIP_INDEX_URL shows no credentials in the public build log',
  async () => {
    built();
    const log = logOf();
    // The attack ran: postBuild printed what it was given.
    expect(log).toMatch(/index seen by postBuild: http:\/\//);
    expect(log).toMatch(/extra index seen by postBuild: http:\/\//);
    expect({ leaked: leaked(log) }).toEqual({ leaked: [] });
  },
  BUILD_TIMEOUT_MS,
);

test(
  'the address a build was given for the index no longer answers after the build',
  async () => {
    built();
    const printed = /index seen by postBuild: (\S+)/.exec(logOf())?.[1] ?? '';
    // fetch takes no credentials in a URL: they go in the header, as pip sends them.
    const url = new URL(printed);
    const headers: Record<string, string> = url.username
      ? {
          authorization: `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`,
        }
      : {};
    url.username = url.password = '';
    // The name builds know the forwarder by is the network's gateway (their /etc/hosts).
    if (url.hostname === INDEX_FORWARDER_HOST) url.hostname = GATEWAY;
    const answer = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) }).then(
      (response) => `HTTP ${response.status}`,
      (error: Error) =>
        `refused (${(error.cause as NodeJS.ErrnoException)?.code ?? error.message})`,
    );
    expect({ printed, answer }).toEqual({ printed, answer: 'refused (ECONNREFUSED)' });
  },
  BUILD_TIMEOUT_MS,
);

test(
  "a repository's own Dockerfile that declares the index arguments gets the forwarder, never the credentials",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bindery-index-dockerfile-'));
    extraDirs.push(dir);
    await writeFile(
      join(dir, 'Dockerfile'),
      [
        'ARG BINDERY_BASE_IMAGE=bindery/base:bookworm',
        'FROM ${BINDERY_BASE_IMAGE}',
        'ARG PIP_INDEX_URL',
        'ARG PIP_EXTRA_INDEX_URL',
        'ARG PIP_TRUSTED_HOST',
        'RUN echo "Dockerfile sees: $PIP_INDEX_URL $PIP_EXTRA_INDEX_URL" \\',
        ' && pip download --no-cache-dir --no-deps -d /tmp/wheels bindery-hello==1.0 pathspec==1.1.1 \\',
        ' && ls /tmp/wheels',
        '',
      ].join('\n'),
    );
    const events: BuildEvent[] = [];
    const built = await builder.build(parseSource(dir), { onEvent: (event) => events.push(event) });
    extraImages.push(built.imageName);
    const log = events.map((event) => event.message).join('');
    expect(log).toMatch(
      new RegExp(
        `Dockerfile sees: http://${INDEX_FORWARDER_HOST}:\\d+/0/simple/ http://${INDEX_FORWARDER_HOST}:\\d+/1/simple/`,
      ),
    );
    // Both downloads came through the forwarder.
    expect(log).toContain('bindery_hello-1.0-py3-none-any.whl');
    expect(log).toContain('pathspec-1.1.1-py3-none-any.whl');
    const { stdout: history } = await exec('docker', [
      'history',
      '--no-trunc',
      '--format',
      '{{.CreatedBy}}',
      built.imageName,
    ]);
    const { stdout: inspect } = await exec('docker', ['image', 'inspect', built.imageName]);
    expect({ log: leaked(log), history: leaked(history), inspect: leaked(inspect) }).toEqual({
      log: [],
      history: [],
      inspect: [],
    });
  },
  BUILD_TIMEOUT_MS,
);

describe("on the sandbox's build networks, behind its firewall", () => {
  let sandbox: PreparedSandbox | undefined;
  let sandboxed: BuildResult | undefined;
  let sandboxFailure: unknown;
  let sandboxBuilder: Builder;
  let copy: string | undefined;
  const rebuilt: string[] = [];
  const sandboxEvents: BuildEvent[] = [];

  beforeAll(async () => {
    const config = loadConfig({
      DOCKER_HOST: process.env.DOCKER_HOST,
      BINDERY_IMAGE_PREFIX: `bindery-test/index-credentials-sandboxed-${RUN_ID}-`,
      BINDERY_BASE_IMAGE: process.env.BINDERY_BASE_IMAGE,
      BINDERY_BUILD_TIMEOUT: String(BUILD_TIMEOUT_MS / 1000),
      BINDERY_SESSION_NETWORK: `bindery-test-idxcred-${RUN_ID}`,
      PIP_INDEX_URL: withCredentials(primary!.url, PRIMARY),
      PIP_EXTRA_INDEX_URL: withCredentials(extra!.url, EXTRA),
      // A fixed port, as the firewall needs; one nothing else holds now.
      BINDERY_BUILD_INDEX_PORT: String(await freePort()),
    });
    sandbox = await prepareSandbox({ engine, config, log: quietLog });
    sandboxBuilder = new Builder({
      engine,
      config,
      buildNetwork: () => sandbox!.build.acquire(),
    });
    try {
      sandboxed = await sandboxBuilder.build(parseSource(FIXTURE), {
        onEvent: (event) => sandboxEvents.push(event),
      });
    } catch (error) {
      sandboxFailure = error;
    }
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    if (sandboxed) await engine.removeImage(sandboxed.imageName);
    for (const image of rebuilt) await engine.removeImage(image);
    if (copy) await rm(copy, { recursive: true, force: true });
    await sandbox?.remove();
  }, 60_000);

  test(
    'pip installs through the forwarder, and the credentials are nowhere',
    async () => {
      const log = sandboxEvents.map((event) => event.message).join('');
      if (!sandboxed) {
        throw new Error(
          `the fixture did not build: ${String(sandboxFailure)}\n${log.split('\n').slice(-40).join('\n')}`,
        );
      }
      const verified = await engine.runToCompletion({
        image: sandboxed.imageName,
        cmd: ['./verify'],
        limits: { cpus: 1, memoryBytes: 2 ** 30 },
        networkDisabled: true,
        timeoutMs: 60_000,
      });
      expect(verified).toEqual({
        exitCode: 0,
        output: expect.stringContaining('index-credentials ok'),
      });
      expect(log).toContain(`index seen by postBuild: http://${INDEX_FORWARDER_HOST}:`);
      const { stdout: history } = await exec('docker', [
        'history',
        '--no-trunc',
        '--format',
        '{{.CreatedBy}}',
        sandboxed.imageName,
      ]);
      const { stdout: inspect } = await exec('docker', ['image', 'inspect', sandboxed.imageName]);
      expect({
        log: leaked(log),
        history: leaked(history),
        inspect: leaked(inspect),
      }).toEqual({ log: [], history: [], inspect: [] });
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'a notebook-only change on the next build network still finds the installs cached',
    async () => {
      // Each build has a network (and gateway) of its own; the build arguments name the
      // forwarder by a host name and a fixed port, so they, and the cache keys, stay the same.
      copy = await mkdtemp(join(tmpdir(), 'bindery-index-credentials-'));
      await cp(FIXTURE, copy, { recursive: true });
      await writeFile(
        join(copy, 'index.ipynb'),
        '{"cells": [], "nbformat": 4, "nbformat_minor": 5}',
      );
      const events: BuildEvent[] = [];
      const again = await sandboxBuilder.build(parseSource(copy), {
        onEvent: (event) => events.push(event),
      });
      rebuilt.push(again.imageName);
      const lines = events.flatMap((event) => event.message.split('\n')).filter(Boolean);
      const install = lines.findIndex((line) =>
        /^Step \d+\/\d+ : RUN pip install .* -r /.test(line),
      );
      expect(lines.slice(install, install + 2)).toEqual([
        expect.stringMatching(/^Step \d+\/\d+ : RUN pip install/),
        ' ---> Using cache',
      ]);
      // The postBuild after the copy ran again, with the forwarder's address.
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^index seen by postBuild: http://${INDEX_FORWARDER_HOST}:`),
        ),
      );
    },
    BUILD_TIMEOUT_MS,
  );
});
