#!/usr/bin/env bash
# Starts a local Redis Cluster for the test suite (test/adapters/redis-cluster.test.ts): six
# redis-server processes on 127.0.0.1 (3 masters + 3 replicas), joined with `redis-cli --cluster
# create`, and waits until every node reports cluster_state:ok with all 16384 slots covered.
#
# Idempotent: a healthy cluster already on these ports is left as it is; a half-up one (some nodes
# down, slots missing, a node not yet joined) is torn down (stop-redis-cluster.sh) and created again.
# It only ever stops servers it started itself (their dir is under $KEYWARDEN_REDIS_CLUSTER_DIR); a
# port held by anything else is an error, so pick other ports.
#
# Environment:
#   KEYWARDEN_REDIS_CLUSTER_PORTS  six ports, space- or comma-separated (default 7000-7005; the cluster
#                                  bus uses each port + 10000)
#   KEYWARDEN_REDIS_CLUSTER_DIR    where each node keeps nodes.conf, its log and pid file, one dir per
#                                  port (default /tmp/keywarden-redis-cluster)
#   KEYWARDEN_REDIS_CLUSTER_WAIT_S how long to wait for the cluster to become healthy (default 30)
#   KEYWARDEN_REDIS_CLUSTER_NODE_TIMEOUT_MS
#                                  cluster-node-timeout of every node (default 2000): how long a master
#                                  must be unreachable before its replica takes over; the failover suite
#                                  (test/adapters/redis-failover.test.ts) uses a shorter one
# A replica's full sync starts at once (repl-diskless-sync-delay 0, not Redis' 5 s), and masters ping
# their replicas every second (repl-ping-replica-period 1, not 10 s): CLUSTER SLOTS lists a replica
# only once gossip carries a replication offset above 0, which on an idle master took the first ping,
# so the cluster is healthy about 2 s after `--cluster create` instead of 10 s.
# Each node's settings are written to <dir>/<port>/redis.conf, so a node that was stopped can be started
# again as it was: `redis-server <dir>/<port>/redis.conf` (it rejoins with its nodes.conf).
# The tests find it through KEYWARDEN_REDIS_CLUSTER_NODES (default 127.0.0.1:7000-7005); set it to
# match if you change the ports. Stop it with scripts/ci/stop-redis-cluster.sh.
set -euo pipefail

HOST=127.0.0.1
read -r -a PORTS <<<"$(echo "${KEYWARDEN_REDIS_CLUSTER_PORTS:-7000 7001 7002 7003 7004 7005}" | tr ',' ' ')"
BASE_DIR=${KEYWARDEN_REDIS_CLUSTER_DIR:-/tmp/keywarden-redis-cluster}
WAIT_S=${KEYWARDEN_REDIS_CLUSTER_WAIT_S:-30}
NODE_TIMEOUT_MS=${KEYWARDEN_REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf '[redis-cluster] %s\n' "$*"; }
fail() {
  printf '[redis-cluster] error: %s\n' "$*" >&2
  exit 1
}

[[ "$NODE_TIMEOUT_MS" =~ ^[1-9][0-9]*$ ]] || fail "KEYWARDEN_REDIS_CLUSTER_NODE_TIMEOUT_MS must be a positive number of milliseconds, got '$NODE_TIMEOUT_MS'"
[ ${#PORTS[@]} -eq 6 ] || fail "KEYWARDEN_REDIS_CLUSTER_PORTS must name 6 ports (3 masters + 3 replicas), got ${#PORTS[@]}"
command -v redis-server >/dev/null 2>&1 || fail "redis-server is not installed"
command -v redis-cli >/dev/null 2>&1 || fail "redis-cli is not installed"

cli() {
  local port=$1
  shift
  redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null | tr -d '\r'
}

# A node is healthy when it sees the whole cluster: state ok, all slots served, all six nodes known,
# three shards (masters with slots), and its own replication link (a replica's) is up.
node_healthy() {
  local port=$1 info
  info=$(cli "$port" cluster info) || return 1
  grep -qx 'cluster_state:ok' <<<"$info" || return 1
  grep -qx 'cluster_slots_assigned:16384' <<<"$info" || return 1
  grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
  grep -qx "cluster_known_nodes:${#PORTS[@]}" <<<"$info" || return 1
  grep -qx 'cluster_size:3' <<<"$info" || return 1
  local replication
  replication=$(cli "$port" info replication) || return 1
  if grep -qx 'role:slave' <<<"$replication"; then
    grep -qx 'master_link_status:up' <<<"$replication" || return 1
  fi
  # Every node agrees there are 3 masters and 3 replicas, none of them failing.
  local nodes
  nodes=$(cli "$port" cluster nodes) || return 1
  [ "$(awk '$3 ~ /master/ && $3 !~ /fail/' <<<"$nodes" | wc -l)" -eq 3 ] || return 1
  [ "$(awk '$3 ~ /slave/ && $3 !~ /fail/' <<<"$nodes" | wc -l)" -eq 3 ] || return 1
  # CLUSTER SLOTS (what clients read) lists a replica only once the node has heard, by gossip, that it
  # has synced: until then a client sees 3 masters and no replica. Wait for 3 ranges x 2 node IDs.
  [ "$(cli "$port" cluster slots | grep -cE '^[0-9a-f]{40}$')" -eq 6 ] || return 1
}

cluster_healthy() {
  local port
  for port in "${PORTS[@]}"; do node_healthy "$port" || return 1; done
}

answers() { [ "$(cli "$1" ping)" = "PONG" ]; }

if cluster_healthy; then
  log "a healthy cluster is already up on $HOST ports ${PORTS[*]}: nothing to do"
  exit 0
fi

# Anything of ours left over (some nodes up, or stale nodes.conf files) goes first.
leftover=0
for port in "${PORTS[@]}"; do
  if answers "$port" || [ -e "$BASE_DIR/$port" ]; then leftover=1; fi
done
if [ "$leftover" -eq 1 ]; then
  log "found a partial or unhealthy cluster (or leftovers in $BASE_DIR): tearing it down first"
  bash "$HERE/stop-redis-cluster.sh" || fail "could not tear down what is on ports ${PORTS[*]}"
fi

for port in "${PORTS[@]}"; do
  answers "$port" && fail "port $port is taken by a Redis server this script did not start; set KEYWARDEN_REDIS_CLUSTER_PORTS"
  if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
    fail "port $port is taken by another program; set KEYWARDEN_REDIS_CLUSTER_PORTS"
  fi
done

for port in "${PORTS[@]}"; do
  dir="$BASE_DIR/$port"
  mkdir -p "$dir"
  cat >"$dir/redis.conf" <<CONF
bind $HOST
port $port
dir "$dir"
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout $NODE_TIMEOUT_MS
appendonly no
save ""
repl-diskless-sync-delay 0
repl-ping-replica-period 1
daemonize yes
pidfile "$dir/redis.pid"
logfile "$dir/redis.log"
CONF
  redis-server "$dir/redis.conf"
done
log "started redis-server ($(redis-server --version | grep -o 'v=[^ ]*')) on $HOST ports ${PORTS[*]}, data in $BASE_DIR/<port>, cluster-node-timeout ${NODE_TIMEOUT_MS} ms"

for port in "${PORTS[@]}"; do
  for _ in $(seq 1 100); do
    answers "$port" && break
    sleep 0.1
  done
  answers "$port" || fail "redis-server on port $port did not come up; see $BASE_DIR/$port/redis.log"
done

nodes=()
for port in "${PORTS[@]}"; do nodes+=("$HOST:$port"); done
log "redis-cli --cluster create ${nodes[*]} --cluster-replicas 1"
# Every node is on one host, so redis-cli warns that replicas share it with their masters: expected here.
if ! created=$(redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes 2>&1); then
  printf '%s\n' "$created" >&2
  fail "redis-cli --cluster create failed"
fi

deadline=$((SECONDS + WAIT_S))
until cluster_healthy; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    for port in "${PORTS[@]}"; do
      printf -- '--- %s\n%s\n' "$port" "$(cli "$port" cluster info | grep -E 'cluster_(state|slots_ok|known_nodes|size)')" >&2
    done
    fail "the cluster did not become healthy within ${WAIT_S}s"
  fi
  sleep 0.2
done

log "cluster is up: cluster_state:ok and 16384 slots on every node, 3 masters + 3 replicas"
cli "${PORTS[0]}" cluster nodes | awk '{ split($2, a, "@"); role = ($3 ~ /master/) ? "master" : "replica"; printf "[redis-cluster]   %-16s %-8s %s\n", a[1], role, ($3 ~ /master/) ? $9 : "" }' | sort
