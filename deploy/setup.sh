#!/usr/bin/env bash
# Makes this machine ready for `npm start` and `npm test`, doing only what is missing:
# npm dependencies, Docker Engine and redis-server from Debian, a running dockerd and Redis,
# and the Bindery base image (built offline when no registry is reachable, its notebook
# environment from wheels the host's pip downloads).
# Runs before both commands (npm's prestart/pretest); safe to run again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[setup] $*" >&2; }

if [ ! -x node_modules/.bin/jest ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The `bindery` command runs compiled JavaScript (dist/, `npm run build`, which `npm ci` runs
# too); compiled again when src/ or workers/ changed since.
if [ ! -f dist/cli.js ] || [ -n "$(find src workers scripts/build-cli.js package.json -newer dist/cli.js -print -quit)" ]; then
  log "compiling the bindery command (npm run build)"
  npm run build --silent
fi

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# deploy/compose.yml is checked by starting it (test/integration/deploy-compose.test.ts).
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v git >/dev/null || missing+=(git)
command -v python3 >/dev/null || missing+=(python3)
# The host's pip fills the base image's wheelhouse (deploy/base-image/bootstrap.sh).
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v runsc >/dev/null || missing+=(runsc)
command -v chromium >/dev/null || missing+=(chromium)
# The sandbox drops forged ARP between containers with ebtables (Debian's iptables brings
# ebtables-nft where it is installed; the ebtables package otherwise).
command -v ebtables >/dev/null || missing+=(ebtables)
# DOCKER_HOST over TLS and ssh:// is tested against a TLS server and an sshd the tests start
# (test/integration/docker-host.test.ts).
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
# BINDERY_REGISTRY is tested against Debian's registry, started by each test on its own port.
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} from Debian"
  apt-get update -qq
  # No service starts on install (Debian's policy-rc.d): set-up starts dockerd and Redis itself,
  # with its own settings, and the tests start their own registry and sshd.
  policy=/usr/sbin/policy-rc.d
  ours=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && ours=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { [ "$ours" = 0 ] || rm -f "$policy"; exit 1; }
  [ "$ours" = 0 ] || rm -f "$policy"
  # Nor at the next boot: Debian's registry would listen on :5000 of every address (an
  # operator's own, installed before, is left alone).
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

# gVisor for BINDERY_RUNTIME=runsc: registered with dockerd as the runtime "runsc".
if [ -z "${DOCKER_HOST:-}" ] && ! grep -q '"runsc"' /etc/docker/daemon.json 2>/dev/null; then
  log "registering gVisor (runsc) as a Docker runtime"
  mkdir -p /etc/docker
  python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("runtimes", {})["runsc"] = {
    "path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=host"]}
json.dump(config, open(path, "w"), indent=2)
PY
  # A running dockerd reloads its runtimes on SIGHUP.
  pid="$(pidof dockerd || true)"
  [ -z "$pid" ] || { kill -HUP $pid; sleep 1; }
fi

if [ -z "${DOCKER_HOST:-}" ] && ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd >/var/log/bindery-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -n 20 /var/log/bindery-dockerd.log >&2; log "dockerd did not start (log above)"; exit 1; }
fi

# Redis holds all of Bindery's state: kept in an append-only file (deploy/redis.conf) in
# /var/lib/bindery/redis; a Redis an older set-up started without it is restarted with it.
if [ -z "${REDIS_URL:-}" ]; then
  deploy/start-redis.sh 6379 /var/lib/bindery/redis /var/log/bindery-redis.log
fi

# An operator's own base image (BINDERY_BASE_IMAGE) is used as it is, pulled when missing;
# ours is built here, and rebuilt when its Dockerfile changed.
base="${BINDERY_BASE_IMAGE:-bindery/base:bookworm}"
if [ "$base" = bindery/base:bookworm ] || ! { docker image inspect "$base" >/dev/null 2>&1 || docker pull "$base" >&2; }; then
  deploy/base-image/bootstrap.sh "$base" >&2
fi
