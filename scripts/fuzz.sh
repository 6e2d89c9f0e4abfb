#!/usr/bin/env bash
# Fuzz campaigns: runs every cargo-fuzz target (or the ones named) for RUNS executions each
# (default 10 000 000), then minimises its corpus, which is kept in the repository. Needs the
# nightly toolchain and cargo-fuzz (installed when missing). Built without a sanitizer: the
# decoders are safe Rust, so what libFuzzer finds is a panic, an overflow (debug assertions are
# on), a hang or runaway memory. The last line per target is libFuzzer's `DONE` line: executions,
# coverage, corpus and speed.
#
#   scripts/fuzz.sh                 # every target
#   RUNS=100000 scripts/fuzz.sh sia # one target, briefly
#   scripts/fuzz.sh h02 & scripts/fuzz.sh watch &   # targets in parallel
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
RUNS=${RUNS:-10000000}
# The decoders refuse frames over 512 bytes (1024 for DC-09); longer inputs only slow the search.
MAX_LEN=${MAX_LEN:-1024}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

# crate directory → its targets
declare -A TARGETS=(
  [firmware-protocol]="decode"
  [device-protocols]="gt06 h02 watch sia"
  [.]="json_uplink import"
)
wanted=("$@")
mkdir -p target/fuzz-logs
for dir in firmware-protocol device-protocols .; do
  for t in ${TARGETS[$dir]}; do
    if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $t " ]]; then continue; fi
    log="$root/target/fuzz-logs/$t.log"
    mkdir -p "$dir/fuzz/corpus/$t"
    echo "[fuzz] $t: $RUNS executions (log: $log)"
    (cd "$dir" && cargo +nightly fuzz run -s none "$t" -- -runs="$RUNS" -max_len="$MAX_LEN" -print_final_stats=1) >"$log" 2>&1 || {
      echo "[fuzz] $t FAILED; see $log and $dir/fuzz/artifacts/$t/"; tail -30 "$log"; exit 1; }
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed "s/^/[fuzz] $t: /"
    (cd "$dir" && cargo +nightly fuzz cmin -s none "$t" >"$root/target/fuzz-logs/$t.cmin.log" 2>&1)
  done
done
