import type { BuildPlan } from './detect.js';
import { JUPYTER_LAUNCHER, MICROMAMBA_FETCHER } from './injected-scripts.js';

/** Where the repository lives in every image, as in repo2docker. */
export const REPO_DIR = '/home/jovyan';
/** The notebook server's environment (the base image's venv) and, by default, the kernel's. */
export const NB_PYTHON_PREFIX = '/srv/venv';
const USER = '1000:1000';
const DEPS_DIR = '/tmp/bindery';
/** Sourced by login shells after Debian's /etc/profile has set its own PATH. */
const PROFILE_PATH_SCRIPT = '/etc/profile.d/00-bindery-path.sh';
const CONDA_DIR = '/srv/conda';
/** The kernel's environment when the repository asks for a Python the base image lacks. */
const KERNEL_VENV = '/srv/kernel';
/** Where uv downloads Pythons from unless the operator names a mirror (uv's own default). */
export const UV_DEFAULT_PYTHON_MIRROR =
  'https://github.com/astral-sh/python-build-standalone/releases/download';

export interface RenderOptions {
  baseImage: string;
  /**
   * Image labels, written in one instruction just before the repository is copied: values
   * that stay the same for a repository (never its commit, which the tag holds), so the step
   * is cached and a notebook change rebuilds only the copy and what follows it.
   */
  labels?: Record<string, string>;
  micromambaUrl: string;
  cranMirror: string;
  /** python-build-standalone mirror for a kernel on another Python; uv's default when unset. */
  pythonMirror?: string;
}

/** Quotes `text` as one single-quoted shell word. */
const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** Writes `content` to `path` in a RUN line; the classic builder has no heredocs. */
function writeFile(path: string, content: string, mode: string): string {
  const encoded = Buffer.from(content).toString('base64');
  return `RUN echo ${encoded} | base64 -d > ${path} && chmod ${mode} ${path}`;
}

function aptInstall(packages: string[]): string {
  return [
    'RUN apt-get update -qq \\',
    ` && apt-get install -y --no-install-recommends ${packages.join(' ')} \\`,
    ' && rm -rf /var/lib/apt/lists/*',
  ].join('\n');
}

const pipInstall = (args: string) => `RUN pip install --no-cache-dir ${args}`;

/** Makes `prefix`'s Python the `python3` kernel of the notebook server's environment. */
const registerKernel = (prefix: string) =>
  `${prefix}/bin/python -m ipykernel install --prefix ${NB_PYTHON_PREFIX} --name python3 --display-name "Python 3 (ipykernel)"`;

/**
 * The kernel's environment on the Python the repository asked for: uv downloads that Python
 * (from the operator's mirror when set) and makes a venv with pip, where the dependencies and
 * postBuild install and the kernel runs. A download that fails says which version and where.
 */
function kernelVenvSteps(version: string, source: string, mirror: string): string[] {
  const failed =
    `${source} asks for Python ${version}, which the base image does not have, and uv could not download it from ${mirror}. ` +
    `Set BINDERY_PYTHON_MIRROR to a reachable mirror of python-build-standalone, or change ${source} to the base image's Python.`;
  return [
    `RUN uv venv --seed --python ${version} --python-preference only-managed ${KERNEL_VENV} > /tmp/uv.log 2>&1 \\`,
    ` || { cat /tmp/uv.log; echo ${shellQuote(failed)}; exit 1; }`,
    `RUN pip install --no-cache-dir ipykernel && ${registerKernel(KERNEL_VENV)}`,
  ];
}

/**
 * The conda environment from an environment file: micromamba creates it (conda-forge unless
 * the file names channels, as in repo2docker), ipykernel is added when the file lacks it, and
 * its Python becomes the `python3` kernel.
 */
const condaSteps = (file: string) => [
  `RUN micromamba create --yes --prefix ${CONDA_DIR} --file ${file} \\`,
  ` && { ${CONDA_DIR}/bin/python -c "import ipykernel" 2>/dev/null || micromamba install --yes --prefix ${CONDA_DIR} ipykernel; } \\`,
  ` && ${registerKernel(CONDA_DIR)} \\`,
  ' && micromamba clean --all --yes',
];

/** repo2docker runs pipenv where the Pipfile is, so `path = "."` means the Pipfile's folder. */
function pipenvStep(dir: string, locked: boolean): string {
  return (
    `RUN cd ${dir} && if [ -n "$PIP_INDEX_URL" ]; then export PIPENV_PYPI_MIRROR="$PIP_INDEX_URL"; fi \\` +
    `\n && pipenv install ${locked ? '--ignore-pipfile' : '--skip-lock'} --system --dev && pipenv --clear`
  );
}

/** `ENV PATH=…` with `prefix`'s bin first after the user's own, as repo2docker orders them. */
const pathWith = (prefix: string) =>
  `PATH=${REPO_DIR}/.local/bin:${REPO_DIR}/.local/bin:${prefix}/bin:$PATH`;

/**
 * Renders the Dockerfile for a plan that is not the `dockerfile` buildpack. Layers go from
 * what changes least to what changes most: system packages as root, then each dependency file
 * copied alone and installed as jovyan, and only then the repository itself, so a change to a
 * notebook rebuilds just the final layers.
 */
export function renderDockerfile(plan: BuildPlan, options: RenderOptions): string {
  if (plan.buildpack === 'dockerfile') {
    throw new Error('a repository with its own Dockerfile is built from that Dockerfile');
  }
  const lines: string[] = [
    '# Rendered by Bindery; repo2docker-compatible.',
    `FROM ${options.baseImage}`,
    'USER root',
    `ENV NB_USER=jovyan NB_UID=1000 USER=jovyan HOME=${REPO_DIR} REPO_DIR=${REPO_DIR}`,
    writeFile('/usr/local/bin/bindery-jupyter', JUPYTER_LAUNCHER, '755'),
  ];

  // System packages and the environments' folders, as root.
  const system = [...plan.aptPackages];
  if (plan.buildpack === 'r') system.push('r-base-core', 'r-cran-irkernel', 'r-cran-remotes');
  if (system.length > 0) lines.push(aptInstall(system));
  if (plan.buildpack === 'r') {
    // Debian's r-cran-irkernel registers the kernel itself (/usr/share/jupyter/kernels/ir).
    lines.push(
      `RUN echo ${shellQuote(`options(repos = c(CRAN = "${options.cranMirror}"))`)} >> /etc/R/Rprofile.site \\`,
      ' && install -d -o 1000 -g 1000 /srv/rlibs',
      'ENV R_LIBS_USER=/srv/rlibs',
    );
  }
  if (plan.environment) {
    lines.push(
      writeFile(`/usr/local/lib/bindery-fetch-micromamba.py`, MICROMAMBA_FETCHER, '644'),
      `RUN python3 /usr/local/lib/bindery-fetch-micromamba.py ${shellQuote(options.micromambaUrl)} /usr/local/bin/micromamba \\`,
      ' && chmod 755 /usr/local/bin/micromamba \\',
      ` && install -d -o 1000 -g 1000 ${CONDA_DIR} /srv/micromamba \\`,
      // conda-forge is the channel of a file that names none, as in repo2docker's images.
      ` && mkdir -p /etc/conda && printf 'channels:\\n  - conda-forge\\n' > /etc/conda/.condarc`,
      `ENV MAMBA_ROOT_PREFIX=/srv/micromamba CONDA_DIR=${CONDA_DIR} KERNEL_PYTHON_PREFIX=${CONDA_DIR} ${pathWith(CONDA_DIR)}`,
    );
  } else if (plan.kernelPython) {
    lines.push(
      `RUN install -d -o 1000 -g 1000 ${KERNEL_VENV} /srv/python`,
      `ENV UV_PYTHON_INSTALL_DIR=/srv/python KERNEL_PYTHON_PREFIX=${KERNEL_VENV} ${pathWith(KERNEL_VENV)}`,
    );
  }

  // JupyterLab's terminals are login shells, and Debian's /etc/profile sets a PATH of its own:
  // the image's PATH, environments included, is put back for them, as repo2docker does.
  lines.push(`RUN echo "export PATH=\\"$PATH\\"" > ${PROFILE_PATH_SCRIPT}`);

  // Dependencies, as jovyan, each from its own file copied before the repository.
  lines.push(
    'ARG PIP_INDEX_URL',
    'ARG PIP_EXTRA_INDEX_URL',
    'ARG PIP_TRUSTED_HOST',
    ...(plan.kernelPython && !plan.environment ? ['ARG UV_PYTHON_INSTALL_MIRROR'] : []),
    `USER ${USER}`,
    `WORKDIR ${REPO_DIR}`,
    // Metadata before the dependencies: each instruction is a build step, and here they are
    // cached for every later build instead of repeated after each notebook change.
    'EXPOSE 8888',
    ...(plan.start ? [`ENTRYPOINT ["${REPO_DIR}/${plan.start}"]`] : []),
    'CMD ["bindery-jupyter"]',
  );
  if (plan.kernelPython && !plan.environment) {
    const source = plan.pipenv ? plan.pipenv.pipfile : 'runtime.txt';
    lines.push(
      ...kernelVenvSteps(
        plan.kernelPython,
        source,
        options.pythonMirror ?? UV_DEFAULT_PYTHON_MIRROR,
      ),
    );
  }
  const depName = (path: string) => `${DEPS_DIR}/${path.split('/').at(-1)}`;
  const copyDep = (path: string) => `COPY --chown=${USER} ${path} ${depName(path)}`;
  const afterCopy: string[] = [];
  if (plan.environment) {
    const { path } = plan.environment;
    if (plan.environment.afterCopy) afterCopy.push(...condaSteps(`${REPO_DIR}/${path}`));
    else lines.push(copyDep(path), ...condaSteps(depName(path)));
  }
  if (plan.pipenv) {
    const locked = plan.pipenv.lockfile !== undefined;
    if (plan.pipenv.afterCopy) {
      const dir = plan.pipenv.pipfile.includes('/')
        ? plan.pipenv.pipfile.replace(/\/[^/]*$/, '')
        : '.';
      afterCopy.push(pipenvStep(dir, locked));
    } else {
      lines.push(
        copyDep(plan.pipenv.pipfile),
        ...(plan.pipenv.lockfile ? [copyDep(plan.pipenv.lockfile)] : []),
        pipenvStep(DEPS_DIR, locked),
      );
    }
  }
  if (plan.requirements) {
    if (plan.requirements.afterCopy) afterCopy.push(pipInstall(`-r ${plan.requirements.path}`));
    else
      lines.push(
        copyDep(plan.requirements.path),
        pipInstall(`-r ${depName(plan.requirements.path)}`),
      );
  }
  if (plan.r?.installR) {
    // As repo2docker: tried before the copy, so a notebook change does not reinstall R
    // packages; run again after it only when it needed the repository's files.
    lines.push(
      copyDep(plan.r.installR),
      `RUN Rscript ${depName(plan.r.installR)} && touch ${DEPS_DIR}/install-R-done \\`,
      ` || echo "install.R failed before the repository was copied; it runs again after the copy"`,
    );
    afterCopy.push(
      `RUN if [ ! -f ${DEPS_DIR}/install-R-done ]; then Rscript ${plan.r.installR}; fi`,
    );
  }

  const labels = Object.entries(options.labels ?? {});
  if (labels.length > 0) {
    lines.push(
      `LABEL ${labels.map(([name, value]) => `${JSON.stringify(name)}=${JSON.stringify(value)}`).join(' ')}`,
    );
  }

  // The repository, then what needs it.
  lines.push(`COPY --chown=${USER} . ${REPO_DIR}/`, ...afterCopy);
  if (plan.installRepo) lines.push(pipInstall('.'));
  if (plan.r?.description)
    lines.push(`RUN R --quiet -e "remotes::install_local('${REPO_DIR}', upgrade = 'never')"`);
  if (plan.postBuild) lines.push(`RUN chmod +x ${plan.postBuild} && ./${plan.postBuild}`);
  if (plan.start) lines.push(`RUN chmod +x ${plan.start}`);
  lines.push('');
  return lines.join('\n');
}
