#!/usr/bin/env bash
# Writes requirements.txt: requirements.in resolved for the image's Python with the host's pip.
#
#   deploy/base-image/lock.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/image-python.sh"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
python3 -m pip install --quiet --dry-run --ignore-installed --target "$(mktemp -d)" \
  --report "$report" "${image_pip_target[@]}" -r "$here/requirements.in"
{
  echo "# requirements.in resolved for CPython $IMAGE_PYTHON_VERSION (Debian bookworm's) by lock.sh; do not edit."
  python3 -c '
import json, sys
for item in sorted(json.load(open(sys.argv[1]))["install"], key=lambda i: i["metadata"]["name"].lower()):
    print("%s==%s" % (item["metadata"]["name"], item["metadata"]["version"]))
' "$report"
} >"$here/requirements.txt"
echo "wrote $here/requirements.txt"
