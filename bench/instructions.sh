#!/usr/bin/env bash
# Instructions per request of hyper-pass and hookwarden, counted by callgrind: the
# measure that stays put on a noisy machine, where CPU seconds swing from hour to hour.
#
#   apt-get install -y valgrind        # once
#   bash bench/instructions.sh         # ~2 minutes; BODY_SIZES="1024 20480" for more
#
# The same traffic as bench/run.sh (unique signed SmartCV events, 10% duplicates) at the
# pace the proxy keeps under valgrind; counting starts after a warm-up. Only the proxy's
# own user-space instructions count, not the kernel's. Valgrind hides the CPU's SHA
# extensions, so the portable SHA-256 runs and costs many times what it does natively:
# the table gives hookwarden's count with SHA-256 and without it.
set -euo pipefail
cd "$(dirname "$0")/.."

BODY_SIZES=${BODY_SIZES:-1024}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-4}
OUT=${OUT:-bench/results}

for tool in valgrind callgrind_annotate callgrind_control python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool is missing: apt-get install -y valgrind" >&2
    exit 1
  fi
done

cargo build --release --locked --bin hookwarden --examples 2>&1 | tail -n 1
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"

"$BIN/examples/bench-upstream" 127.0.0.1:3000 &
PIDS+=($!)

# shellcheck source=bench/common.sh
source bench/common.sh
wait_port 3000

load() { # PORT SIZE DURATION: prints the loadgen's JSON line
  "$BIN/examples/loadgen" --target "127.0.0.1:$1" --path /webhooks/smartcv --scheme smartcv \
    --secret bench-secret --connections "$CONNECTIONS" --duration "$3" --body-size "$2" --duplicates 0.1
}

# count CONFIG SIZE: one proxy under callgrind; prints "requests total_ir sha_ir".
count() {
  local config=$1 size=$2 port pid file
  file="$WORK/callgrind.$config.$size"
  # Pinned to one core, as in bench/run.sh, so each picks the runtime it runs there with.
  case $config in
    hyper-pass)
      port=8081
      taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$file" \
        "$BIN/examples/passthrough" 127.0.0.1:8081 http://127.0.0.1:3000 2>"$WORK/valgrind.log" & ;;
    hookwarden)
      port=8083
      taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$file" \
        "$BIN/hookwarden" run --config bench/hookwarden.toml 2>"$WORK/valgrind.log" & ;;
  esac
  pid=$!
  # Valgrind takes seconds to start a program.
  wait_port "$port" 30
  load "$port" "$size" 2s >/dev/null
  callgrind_control --zero "$pid" >/dev/null 2>&1
  local requests
  requests=$(load "$port" "$size" "$DURATION" | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])')
  callgrind_control --dump "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  # The dump taken after the zeroing is the first numbered part.
  local dump
  dump=$(ls "$file".* | head -n 1)
  local total sha
  total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  sha=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
    awk '/sha2::sha256::compress256 / && !seen {gsub(",", "", $1); print $1; seen = 1}')
  echo "$requests ${total:-0} ${sha:-0}"
}

RAW="$OUT/instructions.jsonl"
: >"$RAW"
for size in $BODY_SIZES; do
  for config in hyper-pass hookwarden; do
    read -r requests total sha < <(count "$config" "$size")
    echo "{\"config\": \"$config\", \"body_size\": $size, \"requests\": $requests, \"ir\": $total, \"sha256_ir\": $sha}" >>"$RAW"
    echo "  $config, $size B: $requests requests, $((total / requests)) instructions each"
  done
done

python3 - "$RAW" <<'EOF' | tee "$OUT/instructions.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| body | hyper-pass | hookwarden | hookwarden without SHA-256 | ratio | ratio without SHA-256 |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for size in sorted({r["body_size"] for r in rows}):
    per = {r["config"]: r for r in rows if r["body_size"] == size}
    hp, hw = per["hyper-pass"], per["hookwarden"]
    a = hp["ir"] / hp["requests"]
    b = hw["ir"] / hw["requests"]
    c = (hw["ir"] - hw["sha256_ir"]) / hw["requests"]
    print(f"| {size // 1024} KiB | {a / 1000:.1f}k | {b / 1000:.1f}k | {c / 1000:.1f}k | {b / a:.2f} | {c / a:.2f} |")
EOF
