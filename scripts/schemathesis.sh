#!/usr/bin/env bash
# Schemathesis against the server's own /openapi.json with every check: once anonymously and once
# with an operator's (dispatcher's) token. Builds and starts `onekey serve` on a fresh SQLite
# database in a temp dir, installs schemathesis from PyPI when missing, prints each run's summary
# and exits non-zero when either run found a failure. EXAMPLES sets the cases per operation and
# phase (default 20); the runs are deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
EXAMPLES=${EXAMPLES:-20}
PORT=${PORT:-18087}
command -v st >/dev/null 2>&1 || python3 -m pip install -q schemathesis
cargo build -q --bin onekey
dir=$(mktemp -d)
ONEKEY_DATABASE_URL="sqlite://$dir/onekey.db" ONEKEY_HTTP_ADDR="127.0.0.1:$PORT" \
  ONEKEY_DEVICE_ADDR=off ONEKEY_GT06_ADDR=off ONEKEY_WATCH_ADDR=off ONEKEY_H02_ADDR=off \
  ONEKEY_SIA_ADDR=off ONEKEY_MQTT_LISTEN=off ONEKEY_BOOTSTRAP_ADMIN=admin:schema-admin-pass \
  ONEKEY_LOGIN_BURST=1000000 ONEKEY_LOG=warn "$root/target/debug/onekey" serve >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do curl -sf "$base/openapi.json" >/dev/null && break; sleep 0.2; done
token_of() {
  curl -sf -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])'
}
admin=$(token_of admin schema-admin-pass)
curl -sf -XPOST "$base/api/v1/operators" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
  -d '{"name":"schema-dispatcher","password":"schema-dispatcher-pass","role":"dispatcher"}' >/dev/null
operator=$(token_of schema-dispatcher schema-dispatcher-pass)
status=0
run() {
  local name=$1; shift
  echo "[schemathesis] $name"
  (cd "$root" && st run "$base/openapi.json" --checks all -n "$EXAMPLES" --generation-deterministic \
    --no-color "$@") >"$root/target/schemathesis-$name.txt" 2>&1 || status=1
  grep -E '^  (❌|✅|⚠️|🚫)|generated' "$root/target/schemathesis-$name.txt" | sed "s/^/[schemathesis] $name: /"
}
run anonymous
# Logging out would end the token's session in the middle of the run.
run operator -H "Authorization: Bearer $operator" --exclude-path-regex 'auth/logout'
exit $status
