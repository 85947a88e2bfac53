/**
 * /usr/local/bin/bindery-jupyter, the command every rendered image runs: it starts the notebook
 * UI the image has at $BINDERY_BASE_URL, with the token in $JUPYTER_TOKEN (read by Notebook 6
 * and Jupyter Server alike, so it never appears in `ps`). Notebook 7 or JupyterLab installed by
 * the repository take ServerApp options; Debian's classic Notebook 6 takes NotebookApp options.
 */
export const JUPYTER_LAUNCHER = `#!/bin/sh
set -e
base_url="\${BINDERY_BASE_URL:-/}"
port="\${BINDERY_PORT:-8888}"
major=$(python3 -c 'import notebook; print(notebook.__version__.split(".")[0])' 2>/dev/null || echo 0)
if [ "$major" -ge 7 ]; then
  exec jupyter notebook --ip=0.0.0.0 --port="$port" --no-browser --ServerApp.base_url="$base_url" "$@"
fi
if command -v jupyter-lab >/dev/null 2>&1; then
  exec jupyter lab --ip=0.0.0.0 --port="$port" --no-browser --ServerApp.base_url="$base_url" "$@"
fi
exec jupyter notebook --ip=0.0.0.0 --port="$port" --no-browser --NotebookApp.base_url="$base_url" "$@"
`;

/**
 * Downloads micromamba for environment.yml: Python's standard library only (the base image
 * has no curl), and a sentence instead of a traceback when the URL cannot be reached.
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
