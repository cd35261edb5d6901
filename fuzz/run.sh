#!/usr/bin/env bash
# Runs every fuzz target (or those in $TARGETS) for SECONDS each, default 600, JOBS at a
# time (default: one per core), and prints each target's executions and findings.
#
#   bash fuzz/run.sh            # 10 minutes per target
#   TARGETS=json bash fuzz/run.sh 60
#
# libFuzzer needs unstable compiler flags. A fresh machine has only the stable
# toolchain, and RUSTC_BOOTSTRAP=1 lets it take them (tried here with rustc 1.95); a
# nightly toolchain works too (`cargo +nightly fuzz run …`). Seeds are
# fuzz/corpus/<target>/seed-*; what the fuzzer adds there is not committed. A failing
# input lands in fuzz/artifacts/<target>/: copy it into fuzz/regressions/<target>/, and
# `cargo test` replays it on stable from then on (src/fuzzing.rs).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-600}
targets=${TARGETS:-"json form signatures framing config"}
jobs=${JOBS:-$(nproc)}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# The form target's reference is CPython itself.
command -v python3 >/dev/null 2>&1 || { echo "python3 is needed (the form target's reference)" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1

cargo fuzz build
mkdir -p logs
running=0
for target in $targets; do
  mkdir -p "corpus/$target" "artifacts/$target"
  (
    # A finding stops the run with a non-zero status; the log and the artifact say what.
    cargo fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 \
      >"logs/$target.log" 2>&1 || true
  ) &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

status=0
printf '%-12s %14s %10s %8s %s\n' target executions exec/s corpus findings
for target in $targets; do
  log="logs/$target.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  corpus=$(find "corpus/$target" -type f | wc -l)
  found=$(find "artifacts/$target" -type f | wc -l)
  printf '%-12s %14s %10s %8s %s\n' "$target" "$runs" "$rate" "$corpus" "$found"
  if [ "$found" -gt 0 ]; then
    status=1
    find "artifacts/$target" -type f -exec echo "  finding: fuzz/{}" \;
  fi
done
exit "$status"
