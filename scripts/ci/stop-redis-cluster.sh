#!/usr/bin/env bash
# Tears down the Redis Cluster that start-redis-cluster.sh started: shuts down each node (no save),
# waits until its port is free and removes its dir. Idempotent: nodes already gone are skipped. Only
# servers whose dir is under $KEYWARDEN_REDIS_CLUSTER_DIR are stopped, never another Redis on a port.
# Same environment as start-redis-cluster.sh (KEYWARDEN_REDIS_CLUSTER_PORTS, KEYWARDEN_REDIS_CLUSTER_DIR).
set -euo pipefail

HOST=127.0.0.1
read -r -a PORTS <<<"$(echo "${KEYWARDEN_REDIS_CLUSTER_PORTS:-7000 7001 7002 7003 7004 7005}" | tr ',' ' ')"
BASE_DIR=${KEYWARDEN_REDIS_CLUSTER_DIR:-/tmp/keywarden-redis-cluster}

log() { printf '[redis-cluster] %s\n' "$*"; }

cli() {
  local port=$1
  shift
  redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null | tr -d '\r'
}

answers() { [ "$(cli "$1" ping)" = "PONG" ]; }

stopped=()
skipped=()
for port in "${PORTS[@]}"; do
  dir="$BASE_DIR/$port"
  if answers "$port"; then
    served=$(cli "$port" config get dir | sed -n 2p)
    if [ "$served" != "$(realpath -m "$dir")" ]; then
      log "port $port: a Redis server this script did not start (dir ${served:-unknown}), left alone"
      skipped+=("$port")
      continue
    fi
    cli "$port" shutdown nosave >/dev/null || true
    for _ in $(seq 1 100); do
      answers "$port" || break
      sleep 0.1
    done
    if answers "$port"; then
      # SHUTDOWN refused or hung: end the process we started, by the pid it wrote.
      [ -s "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
      sleep 0.5
    fi
    answers "$port" && { log "port $port: redis-server did not stop" >&2; exit 1; }
    stopped+=("$port")
  fi
  rm -rf "$dir"
done
rmdir "$BASE_DIR" 2>/dev/null || true

if [ ${#stopped[@]} -gt 0 ]; then log "stopped the cluster nodes on $HOST ports ${stopped[*]} and removed their data"; else log "no cluster node of ours was running on $HOST ports ${PORTS[*]}"; fi
[ ${#skipped[@]} -eq 0 ] || exit 1
