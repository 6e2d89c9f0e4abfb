#!/usr/bin/env bash
# The test suite: makes sure PostgreSQL, Mosquitto, nats-server, promtool, openssl, haproxy,
# cargo-deb and (for the browser tests) Chromium are there and running, then runs every test of the
# workspace. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[test]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL on 127.0.0.1:5432 with trust auth and a database `test`.
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing PostgreSQL"; apt_install postgresql
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -qAtc 'select 1' >/dev/null 2>&1; then
  log "configuring PostgreSQL for local trust auth and database test"
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | tail -1)
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" || as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -1)" main reload || true
  sleep 1
  as_root runuser -u postgres -- createdb test 2>/dev/null || true
fi
# Databases left behind by interrupted runs.
psql -h 127.0.0.1 -U postgres -d test -qAtc \
  "select datname from pg_database where datname like 'onekey_t_%'" 2>/dev/null |
  while read -r db; do psql -h 127.0.0.1 -U postgres -d test -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; done

# Mosquitto on 127.0.0.1:1883, and its command-line clients for the MQTT tests.
command -v mosquitto >/dev/null 2>&1 || { log "installing Mosquitto"; apt_install mosquitto; }
command -v mosquitto_pub >/dev/null 2>&1 || { log "installing mosquitto-clients"; apt_install mosquitto-clients; }
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  log "starting Mosquitto"
  as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
  sleep 1
fi

# NATS (tests/broker_cluster.rs starts a private three-node cluster with JetStream and MQTT).
command -v nats-server >/dev/null 2>&1 || { log "installing nats-server"; apt_install nats-server; }

# promtool checks the shipped alert rules (tests/deploy_files.rs); openssl makes the TLS tests'
# certificates.
command -v promtool >/dev/null 2>&1 || { log "installing prometheus (promtool)"; apt_install prometheus; }
command -v openssl >/dev/null 2>&1 || { log "installing openssl"; apt_install openssl; }
# The deployment files (tests/deploy_files.rs): HAProxy's own config check, systemd-analyze for the
# unit, cargo-deb for the package.
command -v haproxy >/dev/null 2>&1 || { log "installing haproxy"; apt_install haproxy; }
command -v systemd-analyze >/dev/null 2>&1 || { log "installing systemd (systemd-analyze)"; apt_install systemd; }
command -v dpkg-deb >/dev/null 2>&1 || { log "installing dpkg"; apt_install dpkg; }
cargo deb --version >/dev/null 2>&1 || { log "installing cargo-deb"; cargo install cargo-deb --version 3.8.0 --locked; }

# The protocol peers: an SMPP SMS centre (node-smpp) and the volunteers' app (paho-mqtt).
tests/peers/setup.sh

# Chromium and Playwright for the browser tests.
if [ -x tests/browser/setup.sh ]; then
  tests/browser/setup.sh
  export ONEKEY_REQUIRE_BROWSER=1
fi

log "running the test suite"
cargo test --workspace --locked --no-fail-fast
