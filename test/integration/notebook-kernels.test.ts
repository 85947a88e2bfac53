/**
 * What a reader who clicks a badge does: launch a repository through the service (web, build
 * worker and proxy, as `bindery serve` composes them), then run code in the session's default
 * kernel through the proxy's Jupyter API, as JupyterLab does, importing the repository's
 * packages. A shell inside the image is not the kernel: this is where the two differ.
 *
 * Builds run on a network of this test's own with a package index on its gateway, as in
 * build-fixtures.test.ts (made-up packages and real wheels); environment files use the
 * micromamba stand-in.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestNetwork, type TestNetwork } from '../helpers/docker-network.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { INDEX_PACKAGES } from '../helpers/fixture-packages.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { runInKernel, runInTerminal } from '../helpers/jupyter-kernel.js';
import { serveMicromambaStandIn, type StandInServer } from '../helpers/micromamba-stand-in.js';
import { startPackageIndex, type PackageIndex } from '../helpers/package-index.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { ensureWheelhouse } from '../helpers/wheelhouse.js';

const exec = promisify(execFile);
const FIXTURES = join(import.meta.dirname, '../fixtures/repos');
const API_TOKEN = 'kernel-test-token';
const TIMEOUT_MS = 600_000;

/** Prints `sys.prefix` (the kernel's environment) and each distribution's version, a line each. */
const versions = (...distributions: string[]) =>
  [
    'import sys, importlib.metadata as metadata',
    'print(sys.prefix)',
    ...distributions.map(
      (name) => `print(${JSON.stringify(name)}, metadata.version(${JSON.stringify(name)}))`,
    ),
  ].join('\n');
const expected = (python: string, pins: Record<string, string>) =>
  [python, ...Object.entries(pins).map(([name, version]) => `${name} ${version}`), ''].join('\n');

/** Each Python fixture, the code its notebooks would run, and what the kernel must print. */
const CASES: { fixture: string; code: string; output: string }[] = [
  {
    fixture: 'requirements',
    code: `${versions('bindery-hello', 'bindery-greeting')}\nimport bindery_hello\nprint(bindery_hello.MESSAGE)`,
    output: `${expected('/srv/venv', { 'bindery-hello': '1.0', 'bindery-greeting': '1.0' })}Hello, Bindery!\n`,
  },
  {
    fixture: 'setup-py',
    code: `${versions('bindery-local')}\nimport bindery_local\nprint(bindery_local.ANSWER)`,
    output: `${expected('/srv/venv', { 'bindery-local': '0.1' })}42\n`,
  },
  {
    fixture: 'pyproject',
    code: `${versions('mwt', 'bindery-hello')}\nimport mwt\nprint(mwt.__version__)`,
    output: `${expected('/srv/venv', { mwt: '1.0.0', 'bindery-hello': '1.0' })}1.0.0\n`,
  },
  {
    fixture: 'pipfile',
    code: versions('bindery-hello', 'bindery-greeting', 'bindery-dev-tools'),
    output: expected('/srv/venv', {
      'bindery-hello': '1.0',
      'bindery-greeting': '1.0',
      'bindery-dev-tools': '1.0',
    }),
  },
  {
    fixture: 'pipfile-lock',
    code: versions('bindery-hello', 'bindery-greeting'),
    output: expected('/srv/venv', { 'bindery-hello': '1.0', 'bindery-greeting': '1.0' }),
  },
  {
    fixture: 'setup-py-explicit',
    code: `${versions('Dummy', 'bindery-greeting', 'bindery-hello')}\nimport dummy\nprint(dummy.ANSWER)`,
    output: `${expected('/srv/venv', { Dummy: '1.0.0', 'bindery-greeting': '1.0', 'bindery-hello': '2.0' })}42\n`,
  },
  {
    fixture: 'postbuild',
    code: versions('bindery-greeting'),
    output: expected('/srv/venv', { 'bindery-greeting': '1.0' }),
  },
  {
    fixture: 'conda',
    code: `${versions('bindery-hello', 'ipykernel')}`,
    output: expected('/srv/conda', { 'bindery-hello': '1.0', ipykernel: '7.4.0' }),
  },
  {
    fixture: 'conda-pip-local',
    code: `${versions('bindery-conda-local')}\nimport bindery_conda_local\nprint(bindery_conda_local.ANSWER)`,
    output: `${expected('/srv/conda', { 'bindery-conda-local': '0.2' })}42\n`,
  },
  {
    fixture: 'notebook',
    code: [
      versions('numpy', 'pandas', 'matplotlib'),
      'import numpy as np, pandas as pd, matplotlib.pyplot as plt',
      "pd.DataFrame({'y': np.arange(5) ** 2}).plot()",
      'plt.show()',
    ].join('\n'),
    output: expected('/srv/venv', {
      numpy: '2.4.6',
      pandas: '3.1.1',
      matplotlib: '3.11.2',
    }),
  },
  {
    // `start` wraps the session's server: what it exports reaches the kernel.
    fixture: 'start-postbuild',
    code: `${versions('bindery-hello')}\nimport os\nprint(os.environ.get("TEST_START_VAR"))`,
    output: `${expected('/srv/venv', { 'bindery-hello': '1.0' })}var is set\n`,
  },
  {
    // A repository's own Dockerfile, FROM the base image: started with Jupyter's command line.
    fixture: 'dockerfile',
    code: 'import sys, os\nprint(sys.prefix)\nprint(os.environ["FROM_OWN_DOCKERFILE"])',
    output: '/srv/venv\nyes\n',
  },
];

let network: TestNetwork;
let index: PackageIndex;
let micromamba: StandInServer;
let git: GitServer;
let service: TestService;
/** Each fixture's launch, started in beforeAll so builds run side by side. */
const launches = new Map<string, Promise<StreamEvent[]>>();

async function launch(fixture: string): Promise<StreamEvent[]> {
  const repo = await git.publish(fixture, join(FIXTURES, fixture));
  const { events } = await readEventStream(
    `${service.url}/build/git/${encodeURIComponent(repo.url)}/HEAD`,
    { headers: { Authorization: `Bearer ${API_TOKEN}` } },
  );
  return events;
}

/** The ready event of `fixture`'s launch; on failure, the events say why. */
async function readySession(fixture: string): Promise<{ url: string; token: string }> {
  const events = await launches.get(fixture)!;
  const ready = events.at(-1);
  if (ready?.phase !== 'ready') {
    const log = events.map((event) => String(event.message ?? '')).join('');
    throw new Error(`${fixture} did not launch: ${JSON.stringify(ready)}\n${log.slice(-3000)}`);
  }
  return { url: String(ready.url), token: String(ready.token) };
}

beforeAll(async () => {
  network = await createTestNetwork();
  index = await startPackageIndex({
    host: network.gateway,
    packages: INDEX_PACKAGES,
    wheelhouse: await ensureWheelhouse(),
  });
  micromamba = await serveMicromambaStandIn(network.gateway);
  git = await startGitServer();
  service = await startTestService('k', {
    BINDERY_API_TOKENS: API_TOKEN,
    BINDERY_BUILD_CONCURRENCY: '2',
    BINDERY_BUILD_NETWORK: network.name,
    PIP_INDEX_URL: index.url,
    PIP_TRUSTED_HOST: network.gateway,
    BINDERY_MICROMAMBA_URL: micromamba.url,
  });
  // The heaviest build first, so it is not the one the others wait behind.
  for (const fixture of [
    'notebook',
    ...CASES.map((c) => c.fixture).filter((f) => f !== 'notebook'),
  ]) {
    launches.set(fixture, launch(fixture));
  }
}, TIMEOUT_MS);

afterAll(async () => {
  await Promise.allSettled(launches.values());
  await service?.remove();
  await git?.close();
  await micromamba?.close();
  await index?.close();
  await network?.remove();
}, TIMEOUT_MS);

describe("the session's default kernel imports what the repository installs", () => {
  test.each(CASES)(
    '$fixture',
    async ({ fixture, code, output }) => {
      const session = await readySession(fixture);
      const cell = await runInKernel(session.url, session.token, code);
      expect({ status: cell.status, error: cell.error, output: cell.output }).toEqual({
        status: 'ok',
        error: undefined,
        output,
      });
      if (fixture === 'notebook') expect(cell.mimeTypes).toContain('image/png');
    },
    TIMEOUT_MS,
  );
});

describe('the user interfaces, through the proxy', () => {
  test(
    'the session opens JupyterLab by default; /lab and /tree serve JupyterLab 4 and Notebook 7',
    async () => {
      const { url, token } = await readySession('requirements');
      const home = await fetch(`${url}?token=${token}`, { redirect: 'manual' });
      expect(home.status).toBe(302);
      expect(new URL(home.headers.get('location')!, url).pathname).toBe(
        `${new URL(url).pathname}lab`,
      );

      const lab = await fetch(`${url}lab?token=${token}`);
      expect(lab.status).toBe(200);
      const labPage = await lab.text();
      expect(labPage).toContain('<title>JupyterLab</title>');
      expect(labPage).toMatch(/"appVersion": "4\./);

      const tree = await fetch(`${url}tree?token=${token}`);
      expect(tree.status).toBe(200);
      const treePage = await tree.text();
      expect(treePage).toMatch(/"appName": "Jupyter Notebook"/);
      expect(treePage).toMatch(/"appVersion": "7\./);
    },
    TIMEOUT_MS,
  );

  test(
    "a terminal in JupyterLab runs the notebook environment's python and pip",
    async () => {
      const { url, token } = await readySession('requirements');
      // JupyterLab's terminals are login shells, and Debian's /etc/profile sets its own PATH.
      const screen = await runInTerminal(
        url,
        token,
        'echo "== $(command -v python) $(command -v pip) $(python -c "import bindery_hello; print(bindery_hello.__version__)") =="',
        /== \/\S+ \S+ \S+ ==|not found/,
      );
      expect(screen).toContain('== /srv/venv/bin/python /srv/venv/bin/pip 1.0 ==');
    },
    TIMEOUT_MS,
  );

  test(
    'a server extension that postBuild enabled answers in the session',
    async () => {
      const { url, token } = await readySession('postbuild');
      const response = await fetch(`${url}bindery-extension?token=${token}`);
      expect({ status: response.status, body: await response.text() }).toEqual({
        status: 200,
        body: 'bindery-server-extension is enabled',
      });
    },
    TIMEOUT_MS,
  );

  test(
    "a Dockerfile image is started with Jupyter's command line, and its token never on it",
    async () => {
      const { url, token } = await readySession('dockerfile');
      const name = /\/user\/([^/]+)\//.exec(url)![1]!;
      const { stdout } = await exec('docker', ['inspect', '-f', '{{json .Config.Cmd}}', name]);
      expect(JSON.parse(stdout)).toEqual([
        'jupyter',
        'notebook',
        '--ip=0.0.0.0',
        '--port=8888',
        '--no-browser',
        `--NotebookApp.base_url=/user/${name}/`,
        `--ServerApp.base_url=/user/${name}/`,
      ]);
      expect(stdout).not.toContain(token);
    },
    TIMEOUT_MS,
  );
});
