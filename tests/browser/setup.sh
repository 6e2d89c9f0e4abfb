#!/usr/bin/env bash
# Makes the browser tests runnable: Debian's Chromium and a CJK font, and playwright-core from npm.
# Idempotent and quiet; scripts/test.sh runs it before the suite when it is present.
set -euo pipefail
cd "$(dirname "$0")"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || missing+=(fonts-wqy-microhei)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[browser] installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d node_modules/playwright-core ]; then
  echo "[browser] npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
