#!/usr/bin/env bash
# This machine's limits (benches/limits.rs), then each other bench named on the command line:
#   scripts/bench.sh                         cargo bench --bench limits
#   scripts/bench.sh alarm_load connections  limits, then alarm_load, then connections
# ONEKEY_BENCH_SECS sets the seconds per measurement (default 5). Installs nothing: PostgreSQL and
# Mosquitto are those scripts/test.sh sets up, the plot's font is Debian's fonts-dejavu-core; this
# only checks that pg_test_fsync (of the postgresql package), which limits needs, is there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[bench]\033[0m %s\n' "$*"; }

if ! compgen -G '/usr/lib/postgresql/*/bin/pg_test_fsync' >/dev/null; then
  echo "pg_test_fsync not found at /usr/lib/postgresql/*/bin/pg_test_fsync;" \
    "it ships with the postgresql package (scripts/test.sh installs it)" >&2
  exit 1
fi

for bench in limits "$@"; do
  log "cargo bench --bench $bench"
  cargo bench --bench "$bench"
done
