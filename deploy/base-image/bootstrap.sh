#!/usr/bin/env bash
# Builds the Bindery base image with nothing but Debian's package mirror.
#
#   deploy/base-image/bootstrap.sh [IMAGE]      (default: bindery/base:bookworm)
#
# When debian:bookworm is neither present nor pullable (no registry reachable), its root
# filesystem is made with debootstrap and loaded with `docker import`, then the Dockerfile
# beside this script is built on top. Idempotent: an existing image is left alone unless
# BINDERY_REBUILD_BASE=1.
set -euo pipefail

image="${1:-${BINDERY_BASE_IMAGE:-bindery/base:bookworm}}"
mirror="${BINDERY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rootfs_image="bindery/rootfs:bookworm"
here="$(cd "$(dirname "$0")" && pwd)"

# The image remembers the Dockerfile it came from, so a changed Dockerfile rebuilds it.
recipe="$(cat "$here/Dockerfile" | sha256sum | cut -c1-16)"
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

echo "building $image from $rootfs"
log="$(mktemp /var/tmp/bindery-base-build.XXXXXX.log)"
if ! docker build --build-arg "ROOTFS=$rootfs" --label "bindery.base.recipe=$recipe" -t "$image" "$here" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "building the base image failed (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "built $image"
