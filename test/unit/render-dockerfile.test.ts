import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { planBuild, type BuildPlan } from '../../src/build/detect.js';
import { JUPYTER_LAUNCHER, MICROMAMBA_FETCHER } from '../../src/build/injected-scripts.js';
import { renderDockerfile, REPO_DIR } from '../../src/build/render-dockerfile.js';
import { readRepoConfig, type RepoConfig } from '../../src/build/repo-config.js';

const options = {
  baseImage: 'bindery/base:test',
  micromambaUrl: 'http://mirror.test/micromamba.tar.bz2',
  cranMirror: 'http://cran.test',
};
const facts = { pythonVersion: '3.11' };
const REPO_COPY = 'COPY --chown=1000:1000 . /home/jovyan/';

const render = (plan: BuildPlan) => renderDockerfile(plan, options);
const renderFiles = (files: RepoConfig['files'], configDir = 'binder') =>
  render(planBuild({ configDir, files }, facts));

/** The Dockerfile's lines, continuation lines included as they are. */
const linesOf = (dockerfile: string) => dockerfile.split('\n');

/** Index of the one line equal to `line`; fails when it is missing or repeated. */
function indexOfLine(dockerfile: string, line: string): number {
  const lines = linesOf(dockerfile);
  expect(lines.filter((l) => l === line)).toHaveLength(1);
  return lines.indexOf(line);
}

/** Index of the first line matching `pattern`; fails when none does. */
function firstLine(dockerfile: string, pattern: RegExp): number {
  const index = linesOf(dockerfile).findIndex((line) => pattern.test(line));
  expect(index).toBeGreaterThanOrEqual(0);
  return index;
}

/** The USER in force at line `index`. */
function userAt(dockerfile: string, index: number): string | undefined {
  return linesOf(dockerfile)
    .slice(0, index)
    .filter((line) => line.startsWith('USER '))
    .at(-1)
    ?.slice('USER '.length);
}

/** The content a `RUN echo <base64> | base64 -d > path` line writes to `path`. */
function embeddedFile(dockerfile: string, path: string): string {
  const line = linesOf(dockerfile).find((l) => l.includes(`| base64 -d > ${path} `));
  const match = /^RUN echo ([A-Za-z0-9+/=]+) \| base64 -d > /.exec(line ?? '');
  expect(match).not.toBeNull();
  return Buffer.from(match![1]!, 'base64').toString('utf8');
}

describe('renderDockerfile for every buildpack', () => {
  const plans: [string, RepoConfig['files']][] = [
    ['python', { 'requirements.txt': 'numpy' }],
    ['pipenv', { Pipfile: 'x', 'Pipfile.lock': '{}' }],
    ['conda', { 'environment.yml': 'x' }],
    ['r', { 'install.R': 'x', 'runtime.txt': 'r-2024-01-01' }],
    ['other python', { 'runtime.txt': 'python-3.12' }],
    ['default python', {}],
  ];

  it.each(plans)(
    '%s starts FROM the base image as root and ends with the Jupyter command',
    (_name, files) => {
      const dockerfile = renderFiles(files);
      const lines = linesOf(dockerfile);
      expect(lines[0]).toMatch(/^#/);
      expect(lines[1]).toBe('FROM bindery/base:test');
      expect(lines[2]).toBe('USER root');
      expect(lines).toContain(
        'ENV NB_USER=jovyan NB_UID=1000 USER=jovyan HOME=/home/jovyan REPO_DIR=/home/jovyan',
      );
      expect(lines).toContain('EXPOSE 8888');
      expect(lines).toContain('CMD ["bindery-jupyter"]');
      expect(lines.at(-1)).toBe('');
      expect(lines.filter((l) => l.startsWith('FROM '))).toHaveLength(1);
    },
  );

  it.each(plans)(
    '%s copies the repository once, as user 1000, into /home/jovyan',
    (_name, files) => {
      const dockerfile = renderFiles(files);
      const copy = indexOfLine(dockerfile, REPO_COPY);
      expect(userAt(dockerfile, copy)).toBe('1000:1000');
      expect(userAt(dockerfile, linesOf(dockerfile).length)).toBe('1000:1000');
      expect(linesOf(dockerfile).slice(0, copy)).toContain('WORKDIR /home/jovyan');
    },
  );

  it.each(plans)('%s declares the pip index build arguments before any install', (_name, files) => {
    const dockerfile = renderFiles(files);
    const indexUrl = indexOfLine(dockerfile, 'ARG PIP_INDEX_URL');
    const extraUrl = indexOfLine(dockerfile, 'ARG PIP_EXTRA_INDEX_URL');
    const installs = linesOf(dockerfile)
      .map((line, index) => (/pip(env)? install|micromamba create|Rscript/.test(line) ? index : -1))
      .filter((index) => index >= 0);
    for (const install of installs) {
      expect(indexUrl).toBeLessThan(install);
      expect(extraUrl).toBeLessThan(install);
    }
  });

  it('installs the Jupyter launcher, byte for byte', () => {
    const dockerfile = renderFiles({});
    expect(embeddedFile(dockerfile, '/usr/local/bin/bindery-jupyter')).toBe(JUPYTER_LAUNCHER);
    expect(dockerfile).toContain(
      'base64 -d > /usr/local/bin/bindery-jupyter && chmod 755 /usr/local/bin/bindery-jupyter',
    );
  });

  it("refuses the dockerfile buildpack, whose Dockerfile is the repository's own", () => {
    expect(() =>
      render({ buildpack: 'dockerfile', dockerfile: 'Dockerfile', aptPackages: [], notes: [] }),
    ).toThrow('a repository with its own Dockerfile is built from that Dockerfile');
  });
});

describe('renderDockerfile python', () => {
  it('copies requirements.txt alone and installs it before the repository', () => {
    const dockerfile = renderFiles({ 'requirements.txt': 'numpy' });
    const copyDeps = indexOfLine(
      dockerfile,
      'COPY --chown=1000:1000 binder/requirements.txt /tmp/bindery/requirements.txt',
    );
    const install = indexOfLine(
      dockerfile,
      'RUN pip install --no-cache-dir -r /tmp/bindery/requirements.txt',
    );
    const copyRepo = indexOfLine(dockerfile, REPO_COPY);
    expect(copyDeps).toBeLessThan(install);
    expect(install).toBeLessThan(copyRepo);
    expect(userAt(dockerfile, install)).toBe('1000:1000');
  });

  it('installs requirements that need the repository after the copy, from the repository', () => {
    const dockerfile = renderFiles({ 'requirements.txt': '-e .\n' });
    const copyRepo = indexOfLine(dockerfile, REPO_COPY);
    expect(
      indexOfLine(dockerfile, 'RUN pip install --no-cache-dir -r binder/requirements.txt'),
    ).toBeGreaterThan(copyRepo);
    expect(dockerfile).not.toContain('/tmp/bindery/requirements.txt');
  });

  it('installs setup.py or pyproject.toml repositories with pip after the copy', () => {
    const pyproject = '[project]\nname = "x"\n[build-system]\nrequires = ["hatchling"]\n';
    for (const files of [{ 'setup.py': '' }, { 'pyproject.toml': pyproject }]) {
      const dockerfile = renderFiles(files, '');
      expect(indexOfLine(dockerfile, 'RUN pip install --no-cache-dir .')).toBeGreaterThan(
        indexOfLine(dockerfile, REPO_COPY),
      );
    }
  });

  it('installs nothing for the default image', () => {
    const dockerfile = renderFiles({});
    expect(dockerfile).not.toMatch(/pip install|apt-get|COPY --chown=1000:1000 \S+ \/tmp\/bindery/);
  });
});

describe('renderDockerfile apt.txt', () => {
  it('installs the packages as root before anything else is installed or copied', () => {
    const dockerfile = renderFiles({
      'apt.txt': 'graphviz\nlibgdal-dev\n',
      'requirements.txt': 'numpy',
    });
    const apt = indexOfLine(
      dockerfile,
      ' && apt-get install -y --no-install-recommends graphviz libgdal-dev \\',
    );
    expect(linesOf(dockerfile)[apt - 1]).toBe('RUN apt-get update -qq \\');
    expect(linesOf(dockerfile)[apt + 1]).toBe(' && rm -rf /var/lib/apt/lists/*');
    expect(userAt(dockerfile, apt)).toBe('root');
    expect(apt).toBeLessThan(firstLine(dockerfile, /^COPY /));
    expect(apt).toBeLessThan(firstLine(dockerfile, /pip install/));
  });
});

describe('renderDockerfile pipenv', () => {
  it('copies Pipfile and Pipfile.lock before the repository and installs the lock, without --deploy', () => {
    const dockerfile = renderFiles({ Pipfile: 'x', 'Pipfile.lock': '{}' });
    const copyRepo = indexOfLine(dockerfile, REPO_COPY);
    expect(
      indexOfLine(dockerfile, 'COPY --chown=1000:1000 binder/Pipfile /tmp/bindery/Pipfile'),
    ).toBeLessThan(copyRepo);
    expect(
      indexOfLine(
        dockerfile,
        'COPY --chown=1000:1000 binder/Pipfile.lock /tmp/bindery/Pipfile.lock',
      ),
    ).toBeLessThan(copyRepo);
    const install = firstLine(dockerfile, /pipenv install/);
    expect(install).toBeLessThan(copyRepo);
    expect(linesOf(dockerfile)[install - 1]).toContain('RUN cd /tmp/bindery && ');
    expect(linesOf(dockerfile)[install - 1]).toContain('PIPENV_PYPI_MIRROR="$PIP_INDEX_URL"');
    expect(linesOf(dockerfile)[install]).toBe(
      ' && pipenv install --ignore-pipfile --system --dev && pipenv --clear',
    );
  });

  it("uses the notebook environment's pipenv, not Debian's", () => {
    expect(renderFiles({ Pipfile: 'x' })).not.toContain('apt-get');
  });

  it('skips locking when there is no Pipfile.lock', () => {
    const dockerfile = renderFiles({ Pipfile: 'x' });
    expect(dockerfile).toContain('pipenv install --skip-lock --system --dev');
    expect(dockerfile).not.toContain('Pipfile.lock');
  });

  it("installs after the copy, from the Pipfile's folder, when the Pipfile refers to the repository", () => {
    const dockerfile = renderFiles({ Pipfile: 'x = {path = "."}' });
    const install = firstLine(dockerfile, /pipenv install/);
    expect(install).toBeGreaterThan(indexOfLine(dockerfile, REPO_COPY));
    expect(linesOf(dockerfile)[install - 1]).toContain('RUN cd binder && ');
    expect(dockerfile).not.toContain('/tmp/bindery/Pipfile');
  });
});

describe('renderDockerfile for a Python the base image lacks', () => {
  const dockerfile = renderDockerfile(
    planBuild(
      { configDir: '', files: { 'runtime.txt': 'python-3.12', 'requirements.txt': 'x' } },
      facts,
    ),
    { ...options, pythonMirror: 'http://python.test/pbs' },
  );

  it('makes a kernel venv with uv, first on PATH, before any dependency is installed', () => {
    const venv = firstLine(dockerfile, /^RUN uv venv --seed --python 3\.12 /);
    expect(userAt(dockerfile, venv)).toBe('1000:1000');
    expect(venv).toBeLessThan(firstLine(dockerfile, /pip install --no-cache-dir -r/));
    expect(dockerfile).toContain(
      'ENV UV_PYTHON_INSTALL_DIR=/srv/python KERNEL_PYTHON_PREFIX=/srv/kernel PATH=/home/jovyan/.local/bin:/home/jovyan/.local/bin:/srv/kernel/bin:$PATH',
    );
    expect(indexOfLine(dockerfile, 'ARG UV_PYTHON_INSTALL_MIRROR')).toBeLessThan(venv);
  });

  it("puts the image's PATH back for login shells after the last PATH change, as root", () => {
    const profile = indexOfLine(
      dockerfile,
      'RUN echo "export PATH=\\"$PATH\\"" > /etc/profile.d/00-bindery-path.sh',
    );
    expect(profile).toBeGreaterThan(firstLine(dockerfile, /^ENV .*PATH=/));
    expect(userAt(dockerfile, profile)).toBe('root');
  });

  it("registers the venv's Python as the python3 kernel of the notebook server", () => {
    expect(dockerfile).toContain(
      'RUN pip install --no-cache-dir ipykernel && /srv/kernel/bin/python -m ipykernel install --prefix /srv/venv --name python3',
    );
  });

  it('fails with a sentence naming the version and the mirror when uv cannot download it', () => {
    expect(dockerfile).toContain(
      'runtime.txt asks for Python 3.12, which the base image does not have, and uv could not download it from http://python.test/pbs.',
    );
    expect(renderFiles({ 'runtime.txt': 'python-3.12' }, '')).toContain(
      'could not download it from https://github.com/astral-sh/python-build-standalone/releases/download.',
    );
  });

  it('leaves the base Python alone when runtime.txt names it', () => {
    expect(renderFiles({ 'runtime.txt': 'python-3.11' }, '')).not.toMatch(
      /uv venv|KERNEL_PYTHON_PREFIX/,
    );
  });
});

describe('renderDockerfile conda', () => {
  const dockerfile = renderFiles({ 'environment.yml': 'x', 'apt.txt': 'curl' });

  it('fetches micromamba from the configured URL with the embedded fetcher', () => {
    expect(embeddedFile(dockerfile, '/usr/local/lib/bindery-fetch-micromamba.py')).toBe(
      MICROMAMBA_FETCHER,
    );
    expect(dockerfile).toContain(
      "RUN python3 /usr/local/lib/bindery-fetch-micromamba.py 'http://mirror.test/micromamba.tar.bz2' /usr/local/bin/micromamba \\",
    );
    expect(dockerfile).toContain(
      'ENV MAMBA_ROOT_PREFIX=/srv/micromamba CONDA_DIR=/srv/conda KERNEL_PYTHON_PREFIX=/srv/conda PATH=/home/jovyan/.local/bin:/home/jovyan/.local/bin:/srv/conda/bin:$PATH',
    );
    expect(dockerfile).toContain("printf 'channels:\\n  - conda-forge\\n' > /etc/conda/.condarc");
  });

  it('quotes a micromamba URL with shell characters as one word', () => {
    const odd = renderDockerfile(
      planBuild({ configDir: '', files: { 'environment.yml': 'x' } }, facts),
      {
        ...options,
        micromambaUrl: "http://mirror.test/m?a=1&b='2'",
      },
    );
    expect(odd).toContain(
      `bindery-fetch-micromamba.py 'http://mirror.test/m?a=1&b='\\''2'\\''' /usr/local/bin/micromamba`,
    );
  });

  it('copies environment.yml alone and creates the environment before the repository', () => {
    const copyRepo = indexOfLine(dockerfile, REPO_COPY);
    const copyEnv = indexOfLine(
      dockerfile,
      'COPY --chown=1000:1000 binder/environment.yml /tmp/bindery/environment.yml',
    );
    const create = firstLine(
      dockerfile,
      /^RUN micromamba create --yes --prefix \/srv\/conda --file \/tmp\/bindery\/environment.yml/,
    );
    expect(copyEnv).toBeLessThan(create);
    expect(create).toBeLessThan(copyRepo);
    expect(userAt(dockerfile, create)).toBe('1000:1000');
    const register = firstLine(dockerfile, /ipykernel install --prefix \/srv\/venv --name python3/);
    expect(register).toBeLessThan(copyRepo);
    expect(linesOf(dockerfile)[register - 1]).toContain(
      '/srv/conda/bin/python -c "import ipykernel" 2>/dev/null || micromamba install --yes --prefix /srv/conda ipykernel',
    );
  });

  it('creates the environment after the copy, from the repository, when its pip section refers to it', () => {
    const local = renderFiles({ 'environment.yaml': 'dependencies:\n  - pip:\n    - -e .\n' }, '');
    const create = firstLine(local, /^RUN micromamba create/);
    expect(create).toBeGreaterThan(indexOfLine(local, REPO_COPY));
    expect(linesOf(local)[create]).toContain('--file /home/jovyan/environment.yaml');
    expect(local).not.toContain('/tmp/bindery/environment');
  });
});

describe('renderDockerfile R', () => {
  it('installs R and its kernel from Debian and points R at the CRAN mirror', () => {
    const dockerfile = renderFiles({ 'install.R': 'x', 'runtime.txt': 'r-2024-01-01' });
    expect(dockerfile).toContain(
      ' && apt-get install -y --no-install-recommends r-base-core r-cran-irkernel r-cran-remotes \\',
    );
    expect(dockerfile).toContain(
      `RUN echo 'options(repos = c(CRAN = "http://cran.test"))' >> /etc/R/Rprofile.site \\`,
    );
    // r-cran-irkernel registers the ir kernel; installspec() would need `jupyter kernelspec`.
    expect(dockerfile).not.toContain('installspec');
    expect(dockerfile).toContain('ENV R_LIBS_USER=/srv/rlibs');
  });

  it('runs install.R before the repository, and again after it only if that failed', () => {
    const dockerfile = renderFiles({ 'install.R': 'x', 'runtime.txt': 'r-2024-01-01' });
    const copy = indexOfLine(
      dockerfile,
      'COPY --chown=1000:1000 binder/install.R /tmp/bindery/install.R',
    );
    const run = indexOfLine(
      dockerfile,
      'RUN Rscript /tmp/bindery/install.R && touch /tmp/bindery/install-R-done \\',
    );
    const copyRepo = indexOfLine(dockerfile, REPO_COPY);
    expect(copy).toBeLessThan(run);
    expect(run).toBeLessThan(copyRepo);
    expect(userAt(dockerfile, run)).toBe('1000:1000');
    expect(
      indexOfLine(
        dockerfile,
        'RUN if [ ! -f /tmp/bindery/install-R-done ]; then Rscript binder/install.R; fi',
      ),
    ).toBeGreaterThan(copyRepo);
  });

  it('installs a DESCRIPTION package from the repository after the copy', () => {
    const dockerfile = renderFiles({ DESCRIPTION: 'Package: x' }, '');
    const install = indexOfLine(
      dockerfile,
      `RUN R --quiet -e "remotes::install_local('/home/jovyan', upgrade = 'never')"`,
    );
    expect(install).toBeGreaterThan(indexOfLine(dockerfile, REPO_COPY));
    expect(dockerfile).not.toContain('Rscript');
  });
});

describe('renderDockerfile postBuild and start', () => {
  const dockerfile = renderFiles({ 'requirements.txt': 'numpy', postBuild: 'x', start: 'x' });

  it('runs postBuild after the copy, as user 1000, from the repository', () => {
    const postBuild = indexOfLine(
      dockerfile,
      'RUN chmod +x binder/postBuild && ./binder/postBuild',
    );
    expect(postBuild).toBeGreaterThan(indexOfLine(dockerfile, REPO_COPY));
    expect(userAt(dockerfile, postBuild)).toBe('1000:1000');
  });

  it('makes start the ENTRYPOINT wrapping the Jupyter command', () => {
    const copy = indexOfLine(dockerfile, REPO_COPY);
    expect(indexOfLine(dockerfile, 'RUN chmod +x binder/start')).toBeGreaterThan(copy);
    const entrypoint = indexOfLine(dockerfile, 'ENTRYPOINT ["/home/jovyan/binder/start"]');
    expect(entrypoint).toBeGreaterThan(-1);
    expect(entrypoint).toBeLessThan(indexOfLine(dockerfile, 'CMD ["bindery-jupyter"]'));
  });

  it('names root postBuild and start without a directory', () => {
    const rootFile = renderFiles({ postBuild: 'x', start: 'x' }, '');
    expect(rootFile).toContain('RUN chmod +x postBuild && ./postBuild');
    expect(rootFile).toContain(`ENTRYPOINT ["${REPO_DIR}/start"]`);
  });

  it('has no ENTRYPOINT and no postBuild step when the repository has neither', () => {
    const plain = renderFiles({ 'requirements.txt': 'numpy' });
    expect(plain).not.toContain('ENTRYPOINT');
    expect(plain).not.toContain('postBuild');
  });
});

describe('renderDockerfile depends only on the plan', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function repository(notebook: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'bindery-render-'));
    dirs.push(dir);
    await mkdir(join(dir, 'binder'));
    await writeFile(join(dir, 'binder', 'requirements.txt'), 'numpy\n');
    await writeFile(join(dir, 'binder', 'postBuild'), '#!/bin/sh\necho hi\n');
    await writeFile(join(dir, 'analysis.ipynb'), notebook);
    return dir;
  }

  it('renders the same Dockerfile when only a notebook changed', async () => {
    const before = await readRepoConfig(await repository('{"cells": []}'));
    const after = await readRepoConfig(await repository('{"cells": [{"cell_type": "code"}]}'));
    expect(render(planBuild(after, facts))).toBe(render(planBuild(before, facts)));
  });

  it('renders the same Dockerfile for the same plan every time', () => {
    const plan = planBuild(
      { configDir: 'binder', files: { 'requirements.txt': 'numpy', 'apt.txt': 'curl' } },
      facts,
    );
    expect(render(plan)).toBe(render(structuredClone(plan)));
  });
});

describe('what a notebook-only change rebuilds', () => {
  const labels = { 'bindery.kind': 'build', 'bindery.repo': 'git/https://h/x "y"' };

  it('leaves only the repository copy after the dependencies, labels just before it', () => {
    const dockerfile = renderDockerfile(
      planBuild({ configDir: '', files: { 'requirements.txt': 'numpy\n' } }, facts),
      { ...options, labels },
    );
    const lines = linesOf(dockerfile);
    expect(lines.slice(lines.indexOf(REPO_COPY) - 2)).toEqual([
      'RUN pip install --no-cache-dir -r /tmp/bindery/requirements.txt',
      'LABEL "bindery.kind"="build" "bindery.repo"="git/https://h/x \\"y\\""',
      REPO_COPY,
      '',
    ]);
  });

  it('puts EXPOSE, ENTRYPOINT and CMD before the first dependency is copied', () => {
    const dockerfile = renderFiles({ 'requirements.txt': 'numpy', start: 'x' });
    const firstDependency = firstLine(dockerfile, /^COPY .*requirements\.txt/);
    for (const metadata of [
      'EXPOSE 8888',
      'ENTRYPOINT ["/home/jovyan/binder/start"]',
      'CMD ["bindery-jupyter"]',
    ]) {
      expect(indexOfLine(dockerfile, metadata)).toBeLessThan(firstDependency);
    }
  });
});
