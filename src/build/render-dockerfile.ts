import type { BuildPlan } from './detect.js';
import { JUPYTER_LAUNCHER, MICROMAMBA_FETCHER } from './injected-scripts.js';

/** Where the repository lives in every image, as in repo2docker. */
export const REPO_DIR = '/home/jovyan';
const USER = '1000:1000';
const DEPS_DIR = '/tmp/bindery';
const CONDA_DIR = '/srv/conda';

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

  // System packages, as root.
  const system = [...plan.aptPackages];
  if (plan.buildpack === 'pipenv') system.push('pipenv');
  if (plan.buildpack === 'r') system.push('r-base-core', 'r-cran-irkernel', 'r-cran-remotes');
  if (system.length > 0) lines.push(aptInstall(system));
  if (plan.buildpack === 'r') {
    // Debian's r-cran-irkernel registers the kernel itself (/usr/share/jupyter/kernels/ir);
    // IRkernel::installspec() would fail: it runs `jupyter kernelspec`, which the base image
    // lacks (Debian's jupyter-client package).
    lines.push(
      `RUN echo ${shellQuote(`options(repos = c(CRAN = "${options.cranMirror}"))`)} >> /etc/R/Rprofile.site \\`,
      ' && install -d -o 1000 -g 1000 /srv/rlibs',
      'ENV R_LIBS_USER=/srv/rlibs',
    );
  }
  if (plan.buildpack === 'conda') {
    lines.push(
      writeFile(`/usr/local/lib/bindery-fetch-micromamba.py`, MICROMAMBA_FETCHER, '644'),
      `RUN python3 /usr/local/lib/bindery-fetch-micromamba.py ${shellQuote(options.micromambaUrl)} /usr/local/bin/micromamba \\`,
      ' && chmod 755 /usr/local/bin/micromamba \\',
      ` && install -d -o 1000 -g 1000 ${CONDA_DIR} /srv/micromamba`,
      `ENV MAMBA_ROOT_PREFIX=/srv/micromamba PATH=${CONDA_DIR}/bin:$PATH`,
    );
  }

  // Dependencies, as jovyan, each from its own file copied before the repository.
  lines.push(
    'ARG PIP_INDEX_URL',
    'ARG PIP_EXTRA_INDEX_URL',
    'ARG PIP_TRUSTED_HOST',
    `USER ${USER}`,
    `WORKDIR ${REPO_DIR}`,
    // Metadata before the dependencies: each instruction is a build step, and here they are
    // cached for every later build instead of repeated after each notebook change.
    'EXPOSE 8888',
    ...(plan.start ? [`ENTRYPOINT ["${REPO_DIR}/${plan.start}"]`] : []),
    'CMD ["bindery-jupyter"]',
  );
  const copyDep = (path: string) =>
    `COPY --chown=${USER} ${path} ${DEPS_DIR}/${path.split('/').at(-1)}`;
  const afterCopy: string[] = [];
  if (plan.environment) {
    lines.push(
      copyDep(plan.environment),
      `RUN micromamba create --yes --prefix ${CONDA_DIR} --file ${DEPS_DIR}/environment.yml && micromamba clean --all --yes`,
      // Notebooks should run in the environment the repository asked for.
      `RUN if ${CONDA_DIR}/bin/python -c "import ipykernel" 2>/dev/null; then ${CONDA_DIR}/bin/python -m ipykernel install --user --name python3; ` +
        `else echo "environment.yml has no ipykernel: notebooks run on Debian's Python"; fi`,
    );
  }
  if (plan.pipenv) {
    const lock = plan.pipenv.lockfile ? '--ignore-pipfile --deploy' : '--skip-lock';
    const run =
      'RUN if [ -n "$PIP_INDEX_URL" ]; then export PIPENV_PYPI_MIRROR="$PIP_INDEX_URL"; fi; ' +
      `PIPENV_PIPFILE=${plan.pipenv.afterCopy ? `${REPO_DIR}/${plan.pipenv.pipfile}` : `${DEPS_DIR}/Pipfile`} ` +
      `pipenv install ${lock} --system --dev`;
    if (plan.pipenv.afterCopy) afterCopy.push(run);
    else
      lines.push(
        copyDep(plan.pipenv.pipfile),
        ...(plan.pipenv.lockfile ? [copyDep(plan.pipenv.lockfile)] : []),
        run,
      );
  }
  if (plan.requirements) {
    if (plan.requirements.afterCopy) afterCopy.push(pipInstall(`-r ${plan.requirements.path}`));
    else lines.push(copyDep(plan.requirements.path), pipInstall(`-r ${DEPS_DIR}/requirements.txt`));
  }
  if (plan.r?.installR) lines.push(copyDep(plan.r.installR), `RUN Rscript ${DEPS_DIR}/install.R`);

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
