#!/usr/bin/env bash
# Makes the protocol peers runnable: Node.js with node-smpp (the SMS centre) from the committed lock
# file, and Python's paho-mqtt (the volunteers' app). Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v node >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d node_modules/smpp ]; then
  npm ci --no-audit --no-fund --silent
fi
python3 -c 'import paho.mqtt' 2>/dev/null || python3 -m pip install -q 'paho-mqtt>=2,<3'
