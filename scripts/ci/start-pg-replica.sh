#!/usr/bin/env bash
# Starts a streaming replica of the local PostgreSQL primary for test/adapters/postgres-replica.test.ts:
# the Debian cluster <version>/replica on 127.0.0.1:5433, made with pg_createcluster, its data directory
# replaced by `pg_basebackup -R -X stream` from the primary (127.0.0.1:5432, user postgres, trust).
#
# Idempotent: a replica that is already up and streaming is left alone; one that is stopped is started;
# one that does not stream (e.g. it was stopped so long that the primary recycled the WAL it needs, or
# it is no standby at all) is rebuilt. Prints each step. Undo with scripts/ci/stop-pg-replica.sh.
#
# Environment: PG_VERSION (default: the primary's major version), PRIMARY_PORT (5432), REPLICA_PORT
# (5433), REPLICA_CLUSTER (replica), PG_DATABASE (test, only used for the checks).
set -euo pipefail

PRIMARY_HOST=127.0.0.1
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
REPLICA_CLUSTER=${REPLICA_CLUSTER:-replica}
PG_DATABASE=${PG_DATABASE:-test}

say() { printf '[pg-replica] %s\n' "$*"; }
fail() { printf '[pg-replica] error: %s\n' "$*" >&2; exit 1; }
primary() { psql -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -d "$PG_DATABASE" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
replica() { psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d "$PG_DATABASE" -XAtq -v ON_ERROR_STOP=1 -c "$1" 2>/dev/null; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq 1 $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

in_recovery() { [ "$(replica 'SELECT pg_is_in_recovery()')" = t ]; }
streaming() { [ "$(replica "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")" = 1 ]; }
cluster_exists() { pg_lsclusters -h | awk -v v="$VERSION" -v c="$REPLICA_CLUSTER" '$1 == v && $2 == c { found = 1 } END { exit !found }'; }
cluster_online() { pg_lsclusters -h | awk -v v="$VERSION" -v c="$REPLICA_CLUSTER" '$1 == v && $2 == c && $4 ~ /^online/ { found = 1 } END { exit !found }'; }

pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" || fail "the primary on $PRIMARY_HOST:$PRIMARY_PORT is not accepting connections"
VERSION=${PG_VERSION:-$(primary 'SHOW server_version_num' | cut -c1-2)}
DATA_DIR=/var/lib/postgresql/$VERSION/$REPLICA_CLUSTER
say "primary: PostgreSQL $(primary 'SHOW server_version') on $PRIMARY_HOST:$PRIMARY_PORT; replica: cluster $VERSION/$REPLICA_CLUSTER on 127.0.0.1:$REPLICA_PORT"

# 1. The primary must ship WAL to standbys: wal_level replica (the default) or logical, and WAL senders.
wal_level=$(primary 'SHOW wal_level')
senders=$(primary 'SHOW max_wal_senders')
[ "$wal_level" != minimal ] || fail "the primary runs with wal_level = minimal; set wal_level = replica and restart it"
[ "$senders" -gt 0 ] || fail "the primary runs with max_wal_senders = 0; raise it and restart it"
say "primary: wal_level = $wal_level, max_wal_senders = $senders"

# 2. ...and let a replication connection in from 127.0.0.1 ("all" in pg_hba.conf does not cover it).
hba=$(primary 'SHOW hba_file')
if grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+(all|postgres)[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  say "primary: $hba already lets replication connections in from 127.0.0.1"
else
  printf '\n# Added by keywarden scripts/ci/start-pg-replica.sh: streaming replication for the test replica.\nhost    replication     postgres        127.0.0.1/32            trust\n' >>"$hba"
  primary 'SELECT pg_reload_conf()' >/dev/null
  say "primary: added 'host replication postgres 127.0.0.1/32 trust' to $hba and reloaded"
fi

# 3. Already up and streaming: nothing to do.
if cluster_exists && cluster_online && in_recovery && streaming; then
  say "replica $VERSION/$REPLICA_CLUSTER is already running, in recovery and streaming: nothing to do"
  exit 0
fi

# 4. Stopped, but a standby: start it and see whether it streams again.
if cluster_exists && [ -f "$DATA_DIR/standby.signal" ]; then
  if ! cluster_online; then
    say "replica $VERSION/$REPLICA_CLUSTER exists but is stopped: starting it"
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$REPLICA_CLUSTER" start || true
  fi
  if wait_for 15 pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" && wait_for 5 in_recovery && wait_for 10 streaming; then
    say "replica $VERSION/$REPLICA_CLUSTER is running, in recovery and streaming"
    exit 0
  fi
  say "replica $VERSION/$REPLICA_CLUSTER does not stream (the WAL it needs may be gone): rebuilding it"
fi

# 5. (Re)build: a fresh Debian cluster whose data directory is a base backup of the primary.
if cluster_exists; then
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$REPLICA_CLUSTER" stop -m fast 2>/dev/null || true
  pg_dropcluster "$VERSION" "$REPLICA_CLUSTER"
  say "dropped the old cluster $VERSION/$REPLICA_CLUSTER"
fi
if pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT"; then fail "something else already listens on port $REPLICA_PORT"; fi
pg_createcluster "$VERSION" "$REPLICA_CLUSTER" -p "$REPLICA_PORT" >/dev/null
say "created cluster $VERSION/$REPLICA_CLUSTER (port $REPLICA_PORT, config in /etc/postgresql/$VERSION/$REPLICA_CLUSTER)"
# The replica lets in whom the primary lets in (here: trust from 127.0.0.1), not initdb's defaults.
install -o postgres -g postgres -m 0640 "$hba" "/etc/postgresql/$VERSION/$REPLICA_CLUSTER/pg_hba.conf"
say "copied the primary's $hba to /etc/postgresql/$VERSION/$REPLICA_CLUSTER/pg_hba.conf"
rm -rf "$DATA_DIR"
install -d -o postgres -g postgres -m 0700 "$DATA_DIR"
as_postgres pg_basebackup -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -D "$DATA_DIR" -R -X stream --checkpoint=fast
say "replaced $DATA_DIR with pg_basebackup -R -X stream from $PRIMARY_HOST:$PRIMARY_PORT (standby.signal and primary_conninfo written)"
pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$REPLICA_CLUSTER" start
say "started $VERSION/$REPLICA_CLUSTER"

wait_for 30 pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" || fail "the replica did not accept connections on port $REPLICA_PORT within 30 s (see /var/log/postgresql/postgresql-$VERSION-$REPLICA_CLUSTER.log)"
wait_for 10 in_recovery || fail "the replica on port $REPLICA_PORT is not in recovery"
wait_for 15 streaming || fail "the replica on port $REPLICA_PORT does not stream from the primary (see /var/log/postgresql/postgresql-$VERSION-$REPLICA_CLUSTER.log)"
say "replica is ready: pg_isready, pg_is_in_recovery() = true, streaming from the primary"
