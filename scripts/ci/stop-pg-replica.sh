#!/usr/bin/env bash
# Stops the test replica started by scripts/ci/start-pg-replica.sh and drops its cluster (configuration
# and data), so the machine is left as it was; `--keep` only stops it (start-pg-replica.sh starts it
# again, or rebuilds it when the primary no longer has the WAL it needs). The replication line the start
# script added to the primary's pg_hba.conf stays (harmless, and the next start needs it). Safe to run
# when there is no replica.
#
# Environment: PG_VERSION (default: the newest in /etc/postgresql), REPLICA_CLUSTER (replica).
set -euo pipefail

REPLICA_CLUSTER=${REPLICA_CLUSTER:-replica}
VERSION=${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)}
keep=false
for argument in "$@"; do
  case $argument in
    --keep) keep=true ;;
    *) printf 'usage: %s [--keep]\n' "$0" >&2; exit 2 ;;
  esac
done

say() { printf '[pg-replica] %s\n' "$*"; }

if [ -z "$VERSION" ] || ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$REPLICA_CLUSTER" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
  say "no cluster ${VERSION:-?}/$REPLICA_CLUSTER: nothing to do"
  exit 0
fi
if pg_lsclusters -h | awk -v v="$VERSION" -v c="$REPLICA_CLUSTER" '$1 == v && $2 == c && $4 ~ /^online/ { found = 1 } END { exit !found }'; then
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$REPLICA_CLUSTER" stop -m fast
  say "stopped $VERSION/$REPLICA_CLUSTER"
else
  say "$VERSION/$REPLICA_CLUSTER was not running"
fi
if [ "$keep" = true ]; then
  say "kept $VERSION/$REPLICA_CLUSTER (--keep)"
else
  pg_dropcluster "$VERSION" "$REPLICA_CLUSTER"
  say "dropped $VERSION/$REPLICA_CLUSTER (configuration and data)"
fi
