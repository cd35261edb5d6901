#!/usr/bin/env bash
# Instructions per request of hyper-pass and hookwarden, counted by callgrind: the
# measure that stays put on a noisy machine, where CPU seconds swing from hour to hour.
#
#   apt-get install -y valgrind        # once
#   bash bench/instructions.sh         # ~2 minutes; BODY_SIZES="1024 20480" for more,
#                                      # SCHEME=standard-webhooks for the other route
#
# The same traffic as bench/run.sh (unique signed SmartCV events, 10% duplicates) at the
# pace the proxy keeps under valgrind; counting starts after a warm-up. Only the proxy's
# own user-space instructions count, not the kernel's. Valgrind hides the CPU's SHA
# extensions, so the portable SHA-256 runs and costs many times what it does natively:
# the table gives hookwarden's count with SHA-256 and without it.
#
# QUEUE=1 adds queue delivery: the same gateway with `delivery = "queue"`, counted from
# the load's start until every accepted event was delivered, per accepted event and per
# thread (the store's writer thread apart from the rest), beside sync mode per accepted
# event. The kernel's work (fsync, the log's writes) is not in these counts.
set -euo pipefail
cd "$(dirname "$0")/.."

BODY_SIZES=${BODY_SIZES:-1024}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-4}
OUT=${OUT:-bench/results}
QUEUE=${QUEUE:-0}
SCHEME=${SCHEME:-smartcv}

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
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"; echo "work: $WORK" >&2
}
trap cleanup EXIT
mkdir -p "$OUT"

"$BIN/examples/bench-upstream" 127.0.0.1:3000 &
PIDS+=($!)

# shellcheck source=bench/common.sh
source bench/common.sh
wait_port 3000

# SCHEME=standard-webhooks signs for the svix route instead (both in bench/hookwarden.toml).
case $SCHEME in
  smartcv) ROUTE_PATH=/webhooks/smartcv SECRET=bench-secret ;;
  standard-webhooks) ROUTE_PATH=/webhooks/svix SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ;;
  *) echo "SCHEME is smartcv or standard-webhooks" >&2; exit 1 ;;
esac

load() { # PORT SIZE DURATION: prints the loadgen's JSON line
  "$BIN/examples/loadgen" --target "127.0.0.1:$1" --path "$ROUTE_PATH" --scheme "$SCHEME" \
    --secret "$SECRET" --connections "$CONNECTIONS" --duration "$3" --body-size "$2" --duplicates 0.1
}

# The queue gateway's pending events (its admin port is 9094).
pending() {
  python3 -c 'import urllib.request; t = urllib.request.urlopen("http://127.0.0.1:9094/metrics").read().decode(); print(next((int(float(l.split()[1])) for l in t.splitlines() if l.startswith("hookwarden_queue_events{route=\"smartcv\",state=\"pending\"} ")), 0))'
}

# count CONFIG SIZE: one proxy under callgrind; prints "requests duplicates total_ir
# sha_ir writer_ir" (writer_ir: the queue store's writer thread, 0 for the others).
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
    hookwarden-queue)
      port=8084
      rm -rf "$WORK/spool"
      sed -e "s#@WORK@#$WORK#g" -e "s#@UPSTREAM@#http://127.0.0.1:3000#g" -e "s#@BACKOFF@#1s#g" \
        bench/hookwarden-queue.toml >"$WORK/queue.toml"
      taskset -c 0 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$file" \
        "$BIN/hookwarden" run --config "$WORK/queue.toml" 2>"$WORK/valgrind.log" & ;;
  esac
  pid=$!
  # Valgrind takes seconds to start a program.
  wait_port "$port" 30
  load "$port" "$size" 2s >/dev/null
  callgrind_control --zero "$pid" >/dev/null 2>&1
  local requests duplicates
  read -r requests duplicates < <(load "$port" "$size" "$DURATION" |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["requests"], r["duplicates"])')
  if [ "$config" = hookwarden-queue ]; then
    # Every accepted event delivered (and its outcome stored) within the count.
    for _ in $(seq 1 600); do
      [ "$(pending)" = 0 ] && break
      sleep 0.2
    done
    sleep 1
  fi
  callgrind_control --dump "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  # The dump taken after the zeroing is the first numbered part (one file per thread
  # with --separate-threads).
  local total=0 sha=0 writer=0 dump t s
  for dump in $(ls "$file".* | grep -E '\.1(-[0-9]+)?$'); do
    t=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    s=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
      awk '/sha2::sha256::compress256 / && !seen {gsub(",", "", $1); print $1; seen = 1}')
    # A thread that ran nothing since the zeroing shows "." for its total.
    t=${t//[^0-9]/} s=${s//[^0-9]/}
    total=$((total + ${t:-0})) sha=$((sha + ${s:-0}))
    # grep -c reads it all: an early exit would fail the pipe (pipefail).
    if [ "$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null | grep -c 'writer::Writer::run')" -gt 0 ]; then
      writer=$((writer + ${t:-0}))
    fi
  done
  echo "$requests $duplicates $total $sha $writer"
}

RAW="$OUT/instructions.jsonl"
: >"$RAW"
CONFIGS=(hyper-pass hookwarden)
[ "$QUEUE" = 1 ] && CONFIGS+=(hookwarden-queue)
for size in $BODY_SIZES; do
  for config in "${CONFIGS[@]}"; do
    read -r requests duplicates total sha writer < <(count "$config" "$size")
    echo "{\"config\": \"$config\", \"body_size\": $size, \"requests\": $requests, \"duplicates\": $duplicates, \"ir\": $total, \"sha256_ir\": $sha, \"writer_ir\": $writer}" >>"$RAW"
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
queue = [r for r in rows if r["config"] == "hookwarden-queue"]
if queue:
    print()
    print("Per accepted event (duplicates excepted), without SHA-256:")
    print()
    print("| body | sync | queue | of which the store's writer thread | of which the rest | queue rest - sync |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for q in queue:
        s = next(r for r in rows if r["config"] == "hookwarden" and r["body_size"] == q["body_size"])
        per = lambda r, ir: ir / (r["requests"] - r["duplicates"])
        sync = per(s, s["ir"] - s["sha256_ir"])
        total = per(q, q["ir"] - q["sha256_ir"])
        writer = per(q, q["writer_ir"])
        rest = total - writer
        print(f"| {q['body_size'] // 1024} KiB | {sync / 1000:.1f}k | {total / 1000:.1f}k | {writer / 1000:.1f}k | {rest / 1000:.1f}k | {(rest - sync) / 1000:+.1f}k |")
EOF
