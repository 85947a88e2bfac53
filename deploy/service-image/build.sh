#!/usr/bin/env bash
# Builds the Bindery service image with nothing but Debian's package mirror and npm's cache:
#
#   deploy/service-image/build.sh [IMAGE]      (default: bindery/service:<package version>)
#
# The context is staged in a temporary folder: the host's Node binary, the compiled command
# (npm run build) and its production dependencies (npm ci --omit=dev, from npm's cache when
# the registry is away). The root filesystem is debian:bookworm when present or pullable,
# otherwise the one deploy/base-image/bootstrap.sh loaded (bindery/rootfs:bookworm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="$(node -p 'require(process.argv[1]).version' "$root/package.json")"
image="${1:-bindery/service:$version}"

node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "the image takes the host's Node, which must be 20 or newer (it is $(node -v))" >&2; exit 1; }

rootfs=""
for candidate in debian:bookworm bindery/rootfs:bookworm; do
  if docker image inspect "$candidate" >/dev/null 2>&1; then rootfs="$candidate"; break; fi
done
if [ -z "$rootfs" ] && timeout 60 docker pull debian:bookworm >/dev/null 2>&1; then rootfs=debian:bookworm; fi
[ -n "$rootfs" ] || { echo "no bookworm root filesystem: run deploy/setup.sh (it bootstraps one) first" >&2; exit 1; }

context="$(mktemp -d /var/tmp/bindery-service-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
(cd "$root" && npm run build --silent)
mkdir -p "$context/app"
cp "$(command -v node)" "$context/node"
cp -r "$root/bin" "$root/dist" "$root/package.json" "$root/package-lock.json" "$context/app/"
# No lifecycle scripts: `prepare` compiles with esbuild, a dev dependency; dist/ is already here.
(cd "$context/app" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)

echo "building $image from $rootfs"
docker build --quiet --build-arg "ROOTFS=$rootfs" --label "org.opencontainers.image.version=$version" \
  -t "$image" -f "$here/Dockerfile" "$context" >/dev/null
echo "$image"
