#!/usr/bin/env bash
# Builds the Bindery base image with nothing but Debian's package mirror.
#
#   deploy/base-image/bootstrap.sh [IMAGE]      (default: bindery/base:bookworm)
#
# When debian:bookworm is neither present nor pullable (no registry reachable), its root
# filesystem is made with debootstrap and loaded with `docker import`, then the Dockerfile
# beside this script is built on top. The notebook environment's wheels (requirements.txt) are
# downloaded by the host's pip into a wheelhouse (BINDERY_WHEELHOUSE) and served to the build
# on Docker's bridge, so the build needs no route to a package index of its own. Idempotent: an
# existing image is left alone unless its recipe changed or BINDERY_REBUILD_BASE=1.
set -euo pipefail

image="${1:-${BINDERY_BASE_IMAGE:-bindery/base:bookworm}}"
mirror="${BINDERY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rootfs_image="bindery/rootfs:bookworm"
here="$(cd "$(dirname "$0")" && pwd)"
wheelhouse="${BINDERY_WHEELHOUSE:-/var/cache/bindery/wheelhouse}"
. "$here/image-python.sh"

# The image remembers the recipe it came from, so a changed Dockerfile or lock rebuilds it.
recipe="$(cat "$here/Dockerfile" "$here/requirements.txt" | sha256sum | cut -c1-16)"
current="$(docker image inspect -f '{{ index .Config.Labels "bindery.base.recipe" }}' "$image" 2>/dev/null || true)"
if [ "${BINDERY_REBUILD_BASE:-0}" != 1 ] && [ "$current" = "$recipe" ]; then
  echo "base image $image is up to date"
  exit 0
fi

rootfs=""
if docker image inspect debian:bookworm >/dev/null 2>&1; then
  rootfs=debian:bookworm
elif docker image inspect "$rootfs_image" >/dev/null 2>&1; then
  rootfs="$rootfs_image"
elif timeout 60 docker pull debian:bookworm >/dev/null 2>&1; then
  rootfs=debian:bookworm
else
  command -v debootstrap >/dev/null || {
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2
    exit 1
  }
  work="$(mktemp -d /var/tmp/bindery-rootfs.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  echo "no registry: bootstrapping a bookworm root filesystem from $mirror"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    echo "debootstrap failed (log above); check that $mirror is reachable" >&2
    exit 1
  }
  # The same sources a debian:bookworm image carries, so later apt-get calls see updates too.
  security="${mirror%/debian}/debian-security"
  cat >"$work/rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$rootfs_image" >/dev/null
  rootfs="$rootfs_image"
fi

log="$(mktemp /var/tmp/bindery-base-build.XXXXXX.log)"
echo "downloading the notebook environment's wheels into $wheelhouse"
mkdir -p "$wheelhouse"
if ! python3 -m pip download --disable-pip-version-check -d "$wheelhouse" "${image_pip_target[@]}" \
  -r "$here/requirements.txt" >"$log" 2>&1; then
  grep -v '^WARNING' "$log" | tail -n 5 >&2
  echo "The base image needs the Python packages pinned in $here/requirements.txt, and the host's pip could not download them (above): set PIP_INDEX_URL to a reachable index or mirror, or BINDERY_BASE_IMAGE to an image built elsewhere." >&2
  exit 1
fi

# Serve the wheelhouse on the default bridge's gateway, where the build's RUN steps reach it.
# (Docker 20.10 leaves the default bridge's gateway out of its IPAM config; docker0 has it.)
gateway="$(docker network inspect bridge --format '{{ (index .IPAM.Config 0).Gateway }}')"
[ -n "$gateway" ] || gateway="$(ip -4 -o addr show docker0 | awk '{ sub("/.*", "", $4); print $4; exit }')"
port_file="$(mktemp)"
python3 -c '
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
handler = functools.partial(Quiet, directory=sys.argv[2])
server = http.server.ThreadingHTTPServer((sys.argv[1], 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
' "$gateway" "$wheelhouse" >"$port_file" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; rm -f "$port_file"; rm -rf "${work:-}"' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
[ -s "$port_file" ] || { echo "could not serve the wheelhouse on $gateway" >&2; exit 1; }

echo "building $image from $rootfs"
# BINDERY_BASE_NO_CACHE=1 builds every layer anew (bench/base-image.ts times that).
if ! docker build ${BINDERY_BASE_NO_CACHE:+--no-cache} --build-arg "ROOTFS=$rootfs" --build-arg "PIP_FIND_LINKS=http://$gateway:$(cat "$port_file")/" \
  --build-arg "PIP_TRUSTED_HOST=$gateway" \
  --label "bindery.base.recipe=$recipe" -t "$image" "$here" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "building the base image failed (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "built $image"
