/**
 * Builds every fixture repository with the real Builder on the real Docker daemon and runs its
 * `verify` script inside the image, as repo2docker's tests/ do. Repositories that must not
 * build are checked for the error a person would read.
 *
 * Builds run on a Docker network of this test's own (BINDERY_BUILD_NETWORK), as an operator
 * would configure it: apt.txt reaches Debian's mirror from there, and Python packages come
 * from a package index this test serves on the network's gateway. pip ignores a plain-http
 * index on any host but loopback ("not a trusted or secure host and is being ignored"), so
 * the gateway is passed as PIP_TRUSTED_HOST too, as for an internal mirror. That index's server
 * is the CRAN mirror too (BINDERY_CRAN_MIRROR): CRAN is not reachable, so the R fixture needs
 * nothing from it, and any request R makes there is recorded here instead of leaving the machine.
 * The index serves made-up packages (fixture-packages.ts) and real wheels the host's pip
 * downloaded (wheelhouse.ts): the scientific stack and the build back-ends pip asks for.
 * micromamba cannot be downloaded either: environment.yml is built with a stand-in (see
 * serveMicromambaStandIn) and, with an unreachable BINDERY_MICROMAMBA_URL, must fail clearly;
 * likewise a runtime.txt Python that uv cannot download from BINDERY_PYTHON_MIRROR.
 *
 * The index's port is new each run, and rendered Dockerfiles declare ARG PIP_INDEX_URL before
 * the dependency and postBuild steps, so those steps really run in each test run even when an
 * interrupted earlier run left its images (and so its cached layers) behind.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { BuildEvent, BuildPhase } from '../../src/build-event.js';
import { Builder, type BuildResult } from '../../src/build/builder.js';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { createTestNetwork, type TestNetwork } from '../helpers/docker-network.js';
import { BuildError, RepositoryError } from '../../src/errors.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { INDEX_PACKAGES } from '../helpers/fixture-packages.js';
import {
  MICROMAMBA_PATH,
  serveMicromambaStandIn,
  type StandInServer,
} from '../helpers/micromamba-stand-in.js';
import { buildWheel, startPackageIndex, type PackageIndex } from '../helpers/package-index.js';
import { ensureWheelhouse } from '../helpers/wheelhouse.js';

const exec = promisify(execFile);
const FIXTURES = fileURLToPath(new URL('../fixtures/repos/', import.meta.url));
/** Port 9 on the build container's own loopback: refused, and nothing leaves the container. */
const UNREACHABLE_MICROMAMBA_URL = 'http://127.0.0.1:9/micromamba.tar.bz2';
/** A python-build-standalone mirror no build can reach, for runtime.txt's other Python. */
const UNREACHABLE_PYTHON_MIRROR = 'http://127.0.0.1:9/python-build-standalone';
/** The conda fixture built by a builder whose BINDERY_MICROMAMBA_URL cannot be reached. */
const CONDA_UNREACHABLE = 'conda (micromamba unreachable)';
const RUN_ID = randomBytes(4).toString('hex');
const BUILD_TIMEOUT_MS = 300_000;
/** Builds at once; each is limited to one CPU. */
const CONCURRENT_BUILDS = 3;

/** Fixtures whose verify script must pass. */
const BUILDS = [
  // First: R's packages from Debian make it the longest build.
  'r',
  'r-install-after-copy',
  // numpy, pandas and matplotlib from real wheels: the heaviest Python build.
  'notebook',
  'default',
  'apt',
  'postbuild',
  'start',
  'dockerfile',
  'requirements',
  'binder-dir',
  'setup-py',
  'pipfile',
  'pipfile-lock',
  'conda',
  'conda-pip-local',
  // Ported from repo2docker's tests/ (packages from this test's index instead of PyPI).
  'usr-bin',
  'pyproject',
  'setup-py-explicit',
  'start-postbuild',
];
/** Fixtures that must fail. */
const FAILS = ['runtime-mismatch', 'both-binder-dirs', 'postbuild-fails'];

interface Outcome {
  result?: BuildResult;
  error?: unknown;
  events: BuildEvent[];
}

const engine = new DockerEngine(process.env.DOCKER_HOST);
const baseImage = loadConfig({ BINDERY_BASE_IMAGE: process.env.BINDERY_BASE_IMAGE }).baseImage;
// A tag of the base image for this run only: the dockerfile fixture proves the builder passed
// BINDERY_BASE_IMAGE (its Dockerfile's default names bindery/base:bookworm), and the base
// image stays as it is when the run's tags are removed.
const baseAliasName = `bindery-test/base:r${RUN_ID}`;

let network: TestNetwork | undefined;
let index: PackageIndex | undefined;
let micromamba: StandInServer | undefined;
let config: Config;
let builder: Builder;
let unreachableMicromambaBuilder: Builder;
const outcomes = new Map<string, Promise<Outcome>>();

/** Runs `task` when fewer than CONCURRENT_BUILDS tasks are running. */
const queued = (() => {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running < CONCURRENT_BUILDS) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      // A waiting task takes this one's slot; else the slot is free.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
})();

const fixture = (name: string) => parseSource(`${FIXTURES}${name}`);

async function build(name: string, using = builder): Promise<Outcome> {
  const events: BuildEvent[] = [];
  try {
    const result = await using.build(fixture(name), { onEvent: (event) => events.push(event) });
    return { result, events };
  } catch (error) {
    return { error, events };
  }
}

/** The first build of each fixture, started in beforeAll so they run side by side. */
function outcomeOf(name: string): Promise<Outcome> {
  const outcome = outcomes.get(name);
  if (!outcome) throw new Error(`${name} was not started`);
  return outcome;
}

/** Phases in the order they were first reported, consecutive repeats merged. */
const phasesOf = (events: BuildEvent[]): BuildPhase[] =>
  events.map((event) => event.phase).filter((phase, i, all) => phase !== all[i - 1]);

const logOf = (events: BuildEvent[]) => events.map((event) => event.message).join('');

const ipv4 = (address: string) =>
  address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);

/** Whether IPv4 `address` lies in `cidr` (`a.b.c.d/n`). */
function inSubnet(address: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / size) === Math.floor(ipv4(base) / size);
}

/** The build's result, or a failure that shows why the build failed and the end of its log. */
function expectBuilt(name: string, outcome: Outcome): BuildResult {
  if (outcome.result) return outcome.result;
  const error = outcome.error as Error;
  throw new Error(
    `${name} did not build: ${error?.constructor?.name}: ${error?.message}\n` +
      `--- end of its build log ---\n${logOf(outcome.events)
        .split('\n')
        .filter((line) => !/^ ---> |^Removing intermediate container /.test(line))
        .slice(-40)
        .join('\n')}`,
  );
}

beforeAll(async () => {
  await engine.ping();
  if (!(await engine.imageExists(baseImage))) {
    throw new Error(`${baseImage} is missing; build it with deploy/base-image/bootstrap.sh`);
  }
  await exec('docker', ['tag', baseImage, baseAliasName]);
  network = await createTestNetwork();
  index = await startPackageIndex({
    host: network.gateway,
    packages: INDEX_PACKAGES,
    wheelhouse: await ensureWheelhouse(),
  });
  micromamba = await serveMicromambaStandIn(network.gateway);

  const env = {
    DOCKER_HOST: process.env.DOCKER_HOST,
    BINDERY_IMAGE_PREFIX: `bindery-test/r${RUN_ID}-`,
    BINDERY_BASE_IMAGE: baseAliasName,
    BINDERY_BUILD_TIMEOUT: String(BUILD_TIMEOUT_MS / 1000),
    BINDERY_BUILD_NETWORK: network.name,
    PIP_INDEX_URL: index.url,
    PIP_TRUSTED_HOST: network.gateway,
    BINDERY_CRAN_MIRROR: new URL('/cran', index.url).href,
    BINDERY_MICROMAMBA_URL: micromamba.url,
    BINDERY_PYTHON_MIRROR: UNREACHABLE_PYTHON_MIRROR,
  };
  config = loadConfig(env);
  builder = new Builder({ engine, config });
  unreachableMicromambaBuilder = new Builder({
    engine,
    config: loadConfig({
      ...env,
      // Its own image names: the conda fixture must not be found built by the other builder.
      BINDERY_IMAGE_PREFIX: `bindery-test/r${RUN_ID}-nomamba-`,
      BINDERY_MICROMAMBA_URL: UNREACHABLE_MICROMAMBA_URL,
    }),
  });
  for (const name of [...FAILS, ...BUILDS]) {
    const outcome = queued(() => build(name));
    outcomes.set(name, outcome);
  }
  // After the conda build: the steps they share are then cached, so this failing build leaves
  // no intermediate images of its own behind.
  outcomes.set(
    CONDA_UNREACHABLE,
    outcomeOf('conda').then(() => queued(() => build('conda', unreachableMicromambaBuilder))),
  );
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  // Let every build end before removing what it used.
  const settled = await Promise.all(outcomes.values());
  for (const { result } of settled) {
    if (result) await engine.removeImage(result.imageName);
  }
  await engine.removeImage(baseAliasName);
  await index?.close();
  await micromamba?.close();
  await network?.remove();
}, BUILD_TIMEOUT_MS);

describe('fixture repositories that build', () => {
  test.each(BUILDS)(
    '%s builds, passes its verify script, and is found built the second time',
    async (name) => {
      const outcome = await outcomeOf(name);
      const result = expectBuilt(name, outcome);
      expect(result.cached).toBe(false);
      expect(result.imageName.startsWith(config.imagePrefix)).toBe(true);
      expect(phasesOf(outcome.events)).toEqual(['fetching', 'building', 'built']);
      expect(outcome.events.at(-1)).toEqual({
        phase: 'built',
        message: `Built image ${result.imageName}\n`,
        imageName: result.imageName,
      });

      const verified = await engine.runToCompletion({
        image: result.imageName,
        cmd: ['./verify'],
        limits: { cpus: 1, memoryBytes: 2 ** 30 },
        networkDisabled: true,
        // The notebook fixture imports pandas and matplotlib on one CPU; with other test files
        // beside it (--maxWorkers=3 on two cores) that took over 60 s.
        timeoutMs: 180_000,
      });
      // On failure Jest prints the whole object, so the script's output (and a timeout) shows.
      expect(verified).toEqual({ exitCode: 0, output: expect.stringContaining(`${name} ok`) });

      const again: BuildEvent[] = [];
      const second = await builder.build(fixture(name), {
        onEvent: (event) => again.push(event),
      });
      expect(second).toMatchObject({ cached: true, imageName: result.imageName });
      expect(again).toEqual([
        {
          phase: 'built',
          message: 'Found built image, launching...\n',
          imageName: result.imageName,
        },
      ]);
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'postBuild ran in this build, as jovyan, after the repository was copied',
    async () => {
      const { events } = await outcomeOf('postbuild');
      // Its output in this build's log: the step ran now, it was not a cached layer.
      expect(logOf(events)).toContain('postBuild running as jovyan (1000) in /home/jovyan\n');
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'build steps run on BINDERY_BUILD_NETWORK',
    async () => {
      const { events } = await outcomeOf('postbuild');
      const address = /postBuild on address (\d+\.\d+\.\d+\.\d+)/.exec(logOf(events))?.[1];
      const subnet = network!.subnet;
      expect({ address, subnet, inside: address && inSubnet(address, subnet) }).toEqual({
        address: expect.any(String),
        subnet: expect.any(String),
        inside: true,
      });
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    "a repository's own Dockerfile is built FROM the base image the builder passes",
    async () => {
      const result = expectBuilt('dockerfile', await outcomeOf('dockerfile'));
      const { output } = await engine.runToCompletion({
        image: result.imageName,
        cmd: ['cat', '/etc/bindery-built-from'],
        limits: { cpus: 1, memoryBytes: 2 ** 28 },
        networkDisabled: true,
        timeoutMs: 60_000,
      });
      // The Dockerfile's own default is bindery/base:bookworm; this run's tag proves the build arg.
      expect(output.trim()).toBe(baseAliasName);
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'requirements come from the configured package index, dependencies included',
    async () => {
      expectBuilt('requirements', await outcomeOf('requirements'));
      expect(index!.requests).toEqual(
        expect.arrayContaining([
          '/simple/bindery-hello/',
          '/simple/bindery-greeting/',
          '/files/bindery_hello-1.0-py3-none-any.whl',
          '/files/bindery_greeting-1.0-py3-none-any.whl',
        ]),
      );
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'with binder/, only binder/ configures the build',
    async () => {
      expectBuilt('binder-dir', await outcomeOf('binder-dir'));
      expect(index!.requests).toContain('/files/bindery_hello-2.0-py3-none-any.whl');
      expect(index!.requests).not.toContain('/simple/bindery-no-such-package/');
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'setup.py and pyproject.toml are built with back-ends from the configured index',
    async () => {
      const { events } = await outcomeOf('setup-py');
      expectBuilt('setup-py', await outcomeOf('setup-py'));
      expectBuilt('pyproject', await outcomeOf('pyproject'));
      expect(logOf(events)).toContain('Successfully installed bindery-local-0.1');
      // pip builds each in isolation, asking the build's index for the back-end it declares.
      expect(index!.requests).toEqual(
        expect.arrayContaining(['/simple/setuptools/', '/simple/hatchling/']),
      );
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    "a Pipfile's packages and dev-packages come from the configured package index, not its [[source]]",
    async () => {
      expectBuilt('pipfile', await outcomeOf('pipfile'));
      // The Pipfile names https://pypi.org/simple, which builds cannot reach: PIPENV_PYPI_MIRROR.
      expect(await readFile(`${FIXTURES}pipfile/Pipfile`, 'utf8')).toContain(
        'url = "https://pypi.org/simple"',
      );
      expect(index!.requests).toEqual(
        expect.arrayContaining([
          '/simple/bindery-dev-tools/',
          '/files/bindery_dev_tools-1.0-py3-none-any.whl',
        ]),
      );
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'Pipfile.lock locks the wheels this test serves, by hash, and its build used them',
    async () => {
      // The lock's hashes must be those of the wheels the index serves, or pipenv refuses them;
      // if they differ, the wheels changed: run `pipenv lock` against an index with only 1.0.
      const lock = JSON.parse(await readFile(`${FIXTURES}pipfile-lock/Pipfile.lock`, 'utf8')) as {
        default: Record<string, { version: string; hashes: string[] }>;
      };
      const served = Object.fromEntries(
        INDEX_PACKAGES.filter((pkg) => pkg.version === '1.0' && pkg.name in lock.default).map(
          (pkg) => [
            pkg.name,
            {
              version: `==${pkg.version}`,
              hashes: [`sha256:${createHash('sha256').update(buildWheel(pkg).data).digest('hex')}`],
            },
          ],
        ),
      );
      expect(lock.default).toEqual({
        'bindery-greeting': served['bindery-greeting'],
        'bindery-hello': { ...served['bindery-hello'], index: 'pypi' },
      });
      expectBuilt('pipfile-lock', await outcomeOf('pipfile-lock'));
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'install.R that needs the repository fails before the copy and runs again after it',
    async () => {
      const { events } = await outcomeOf('r-install-after-copy');
      expectBuilt('r-install-after-copy', await outcomeOf('r-install-after-copy'));
      expect(logOf(events)).toContain(
        'install.R failed before the repository was copied; it runs again after the copy\n',
      );
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'R uses the CRAN mirror the builder was configured with, during the build and in the image',
    async () => {
      const result = expectBuilt('r', await outcomeOf('r'));
      const { exitCode, output } = await engine.runToCompletion({
        image: result.imageName,
        cmd: ['Rscript', '-e', 'cat(getOption("repos")[["CRAN"]])'],
        limits: { cpus: 1, memoryBytes: 2 ** 28 },
        networkDisabled: true,
        timeoutMs: 60_000,
      });
      expect({ exitCode, mirror: output.trim() }).toEqual({
        exitCode: 0,
        mirror: config.build.cranMirror,
      });
      // Installing the DESCRIPTION package, remotes looked up its dependencies there (and,
      // finding no index, went on: the package has none).
      expect(index!.requests).toContain('/cran/src/contrib/PACKAGES');
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'environment.yml: micromamba is fetched from BINDERY_MICROMAMBA_URL (a stand-in here)',
    async () => {
      const { events } = await outcomeOf('conda');
      expectBuilt('conda', await outcomeOf('conda'));
      // Once or twice: conda-pip-local's build may find the download step cached.
      expect([...new Set(micromamba!.requests)]).toEqual([MICROMAMBA_PATH]);
      expect(logOf(events)).toContain(
        'stand-in micromamba: made /srv/conda from /tmp/bindery/environment.yml\n',
      );
      // The file lists ipykernel: nothing is added.
      expect(logOf(events)).not.toContain('stand-in micromamba: installed');
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'environment.yaml with a local pip reference: made after the copy, ipykernel added, runtime.txt ignored',
    async () => {
      const { events } = await outcomeOf('conda-pip-local');
      expectBuilt('conda-pip-local', await outcomeOf('conda-pip-local'));
      const log = logOf(events);
      expect(log).toContain(
        'stand-in micromamba: made /srv/conda from /home/jovyan/environment.yaml\n',
      );
      expect(log).toContain('stand-in micromamba: installed ipykernel into /srv/conda\n');
      // The copy came first: its step is before the environment's in the log.
      expect(log.indexOf('COPY --chown=1000:1000 . /home/jovyan/')).toBeLessThan(
        log.indexOf('micromamba create'),
      );
      expect(log).toMatch(/runtime\.txt.*ignored/);
    },
    BUILD_TIMEOUT_MS,
  );
});

describe('fixture repositories that must not build', () => {
  async function expectNoImage(name: string, using = builder) {
    const { imageName } = await using.resolve(fixture(name));
    expect(await engine.imageExists(imageName)).toBe(false);
  }

  test(
    'runtime.txt asking for a Python uv cannot download fails, naming the version and the mirror',
    async () => {
      const { error, events } = await outcomeOf('runtime-mismatch');
      expect(error).toBeInstanceOf(BuildError);
      const sentence = `runtime.txt asks for Python 3.8, which the base image does not have, and uv could not download it from ${UNREACHABLE_PYTHON_MIRROR}.`;
      expect((error as Error).message).toContain(sentence);
      expect(logOf(events)).toContain(sentence);
      expect(phasesOf(events)).toEqual(['fetching', 'building']);
      await expectNoImage('runtime-mismatch');
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'both-binder-dirs fails before building, saying both directories exist',
    async () => {
      const { error, events } = await outcomeOf('both-binder-dirs');
      expect(error).toBeInstanceOf(RepositoryError);
      expect((error as Error).message).toMatch(/both binder\/ and \.binder\//);
      // A local directory's configuration is read to name its image, before any phase.
      expect(phasesOf(events)).toEqual([]);
      // Nor can it be named, so no image of it can exist.
      await expect(builder.resolve(fixture('both-binder-dirs'))).rejects.toThrow(RepositoryError);
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'postbuild-fails fails with a BuildError naming postBuild and its exit code',
    async () => {
      const { error, events } = await outcomeOf('postbuild-fails');
      expect(error).toBeInstanceOf(BuildError);
      expect((error as BuildError).message).toMatch(/postBuild/);
      expect((error as BuildError).message).toMatch(/non-zero code: 3\b/);
      expect((error as BuildError).step).toMatch(/postBuild/);
      // What the script printed ends the error too, and reached the person watching the build.
      expect((error as BuildError).message).toMatch(
        /\nIts last output:\n( {2}.*\n)* {2}postBuild is failing on purpose/,
      );
      expect(phasesOf(events)).toEqual(['fetching', 'building']);
      expect(logOf(events)).toContain('postBuild is failing on purpose\n');
      await expectNoImage('postbuild-fails');
    },
    BUILD_TIMEOUT_MS,
  );

  test(
    'environment.yml fails with a BuildError at the micromamba download when it cannot be reached',
    async () => {
      const { error, events } = await outcomeOf(CONDA_UNREACHABLE);
      expect(error).toBeInstanceOf(BuildError);
      expect((error as BuildError).step).toContain(
        `bindery-fetch-micromamba.py '${UNREACHABLE_MICROMAMBA_URL}'`,
      );
      expect((error as BuildError).message).toMatch(/non-zero code: 1\b/);
      expect(phasesOf(events)).toEqual(['fetching', 'building']);
      // The sentence ends the error and is in the build log the person sees.
      expect((error as BuildError).message).toContain(
        `environment.yml needs micromamba, but ${UNREACHABLE_MICROMAMBA_URL} cannot be reached from this host (`,
      );
      expect(logOf(events)).toContain(
        `environment.yml needs micromamba, but ${UNREACHABLE_MICROMAMBA_URL} cannot be reached from this host (`,
      );
      expect(logOf(events)).toContain('Set BINDERY_MICROMAMBA_URL to a reachable copy');
      await expectNoImage('conda', unreachableMicromambaBuilder);
    },
    BUILD_TIMEOUT_MS,
  );
});
