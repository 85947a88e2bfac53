/**
 * /usr/local/bin/bindery-jupyter, the command every rendered image runs: JupyterLab (which
 * serves Notebook 7 at /tree too) from the notebook environment at $BINDERY_BASE_URL, with the
 * token in $JUPYTER_TOKEN so it never appears in `ps`. The environment's own `jupyter` is named,
 * because a conda or kernel environment first on PATH may have a `jupyter` without JupyterLab.
 * An operator's base image with only Notebook (no JupyterLab) gets `jupyter notebook`.
 */
export const JUPYTER_LAUNCHER = `#!/bin/sh
set -e
prefix="\${NB_PYTHON_PREFIX:-/srv/venv}"
jupyter="$prefix/bin/jupyter"
[ -x "$jupyter" ] || jupyter=jupyter
base_url="\${BINDERY_BASE_URL:-/}"
set -- --ip=0.0.0.0 --port="\${BINDERY_PORT:-8888}" --no-browser --ServerApp.base_url="$base_url" "$@"
if [ -x "$prefix/bin/jupyter-lab" ] || command -v jupyter-lab >/dev/null 2>&1; then
  exec "$jupyter" lab "$@"
fi
# Notebook 6 reads NotebookApp's options, Notebook 7 ServerApp's.
exec "$jupyter" notebook --NotebookApp.base_url="$base_url" "$@"
`;

/**
 * Downloads micromamba for environment.yml: Python's standard library only (an operator's base
 * image may lack curl), and a sentence instead of a traceback when the URL cannot be reached.
 */
export const MICROMAMBA_FETCHER = `import io, sys, tarfile, urllib.request
url, target = sys.argv[1], sys.argv[2]
try:
    data = urllib.request.urlopen(url, timeout=60).read()
except Exception as error:
    sys.exit(f"environment.yml needs micromamba, but {url} cannot be reached from this host ({error}). "
             "Set BINDERY_MICROMAMBA_URL to a reachable copy, or use requirements.txt instead.")
member = tarfile.open(fileobj=io.BytesIO(data), mode="r:*").extractfile("bin/micromamba")
with open(target, "wb") as out:
    out.write(member.read())
`;
