#!/usr/bin/env bash
# Starts Bindery's Redis on 127.0.0.1:PORT (6379) with deploy/redis.conf, its append-only file
# in DIR (/var/lib/bindery/redis), unless one already answers there. A running Redis without
# append-only persistence that an older set-up started (its log is LOGFILE) is restarted with
# persistence, keeping its data: SHUTDOWN SAVE writes it to an RDB file, which the new Redis
# loads before it turns the append-only file on. Any other Redis there is left alone, with a
# warning. Run by deploy/setup.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-6379}"
dir="${2:-/var/lib/bindery/redis}"
logfile="${3:-/var/log/bindery-redis.log}"
log() { echo "[setup] $*" >&2; }
cli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
setting() { cli config get "$1" | sed -n 2p; }
wait_for() {
  for _ in $(seq 100); do eval "$1" && return 0; sleep 0.1; done
  return 1
}
start() {
  mkdir -p "$dir"
  chmod 700 "$dir"
  redis-server deploy/redis.conf --port "$port" --dir "$dir" --daemonize yes \
    --logfile "$logfile" "$@"
  wait_for 'cli ping >/dev/null 2>&1' || { tail -n 20 "$logfile" >&2; log "redis-server did not start (log above)"; exit 1; }
}

if ! cli ping >/dev/null 2>&1; then
  log "starting redis-server on 127.0.0.1:$port, append-only file in $dir"
  start
  exit 0
fi
[ "$(setting appendonly)" = yes ] && exit 0
if [ "$(setting logfile)" != "$logfile" ]; then
  log "warning: the Redis on 127.0.0.1:$port keeps nothing on disk (appendonly no); a restart of it loses queued builds, logs and sessions. Turn on appendonly (see deploy/redis.conf)."
  exit 0
fi
# `dir` is a protected setting in Redis 7 (CONFIG SET refuses it), so the move takes a restart.
log "restarting the Redis on 127.0.0.1:$port with append-only persistence in $dir, keeping its data"
mkdir -p "$dir"
snapshot="$(setting dir)/$(setting dbfilename)"
cli shutdown save >/dev/null 2>&1 || true
wait_for '! cli ping >/dev/null 2>&1' || { log "Redis on $port did not stop"; exit 1; }
mv "$snapshot" "$dir/bindery-migrate.rdb"
start --appendonly no --dbfilename bindery-migrate.rdb
cli config set appendonly yes >/dev/null
wait_for '[ "$(cli info persistence | tr -d "\r" | grep -c "^aof_rewrite_in_progress:0\|^aof_enabled:1")" = 2 ]' ||
  { log "Redis did not write its append-only file"; exit 1; }
rm -f "$dir/bindery-migrate.rdb"
