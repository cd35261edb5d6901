#!/usr/bin/env bash
# Replicas on one Redis (docs/performance.md "Scale-out"): N = 1, 2, 4 and 8 gateway
# processes sharing one queue in Redis, beside one process on the disk store and one in
# sync mode, in the same run. For each: accepted events/s (closed loop, 32 connections
# spread evenly over the processes, as a load balancer would), the `queued` answer's
# p99, and the CPU each event cost Redis and the gateways, from the first request until
# the app has received every accepted event (so storing, claiming and settling are all
# counted).
#
#   bash bench/scaleout.sh          # ~3 minutes; needs redis-server and python3
#
# Pinning: every gateway process on core 0; Redis, the app and the load generators on
# core 1. On a two-core machine the replicas share one core, so the rate shows what
# coordinating through Redis costs, not more cores; Redis's CPU per event is what says
# how far one Redis goes. Figures go to bench/results/scaleout.{jsonl,svg}.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
CONNECTIONS=32
COUNTS=${COUNTS:-"1 2 4 8"}

command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }
# shellcheck source=bench/common.sh
source bench/common.sh
start_bench
OUT=bench/results/scaleout.jsonl
: >"$OUT"

# cpu_ticks PID...: user + system CPU of the processes so far, in clock ticks.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") ))
  done
  echo "$total"
}

# received: events the app has received so far.
received() { curl -sf http://127.0.0.1:3000/__count; }

# drain TARGET: waits (up to 120 s) until the app has received TARGET events.
drain() {
  for _ in $(seq 1 1200); do
    [ "$(received)" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "the app received $(received) of $1 events" >&2
  exit 1
}

# load N DURATION: one load generator per gateway process, the connections split evenly;
# leaves each one's figures in $WORK/loadI.json and prints the events accepted (new ids).
load() {
  local n=$1 pids=() i
  rm -f "$WORK"/load*.json
  for i in $(seq 1 "$n"); do
    taskset -c 1 "$BIN/examples/loadgen" --target "127.0.0.1:$((8100 + i))" \
      --connections $(( CONNECTIONS / n )) --duration "$2" --body-size 1024 --duplicates 0.1 \
      >"$WORK/load$i.json" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  python3 -c 'import json,sys; print(sum(json.load(open(a))["ok"] - json.load(open(a))["duplicates"] for a in sys.argv[1:]))' "$WORK"/load*.json
}

# round MODE N: N gateway processes (MODE sync, disk or redis) under one closed-loop load.
round() {
  local mode=$1 n=$2 redis="" gws=() i
  rm -rf "$WORK/data" && mkdir -p "$WORK/data"
  if [ "$mode" = redis ]; then
    taskset -c 1 redis-server --port 0 --unixsocket "$WORK/data/redis.sock" --save "" \
      --appendonly yes --appendfsync everysec --dir "$WORK/data" >/dev/null &
    redis=$!
    for _ in $(seq 1 100); do [ -S "$WORK/data/redis.sock" ] && break; sleep 0.05; done
  fi
  for i in $(seq 1 "$n"); do
    local conf="$WORK/gw$i.toml"
    if [ "$mode" = sync ]; then
      cp bench/hookwarden.toml "$conf"
      sed -i "s#@UPSTREAM@#http://127.0.0.1:3000#g" "$conf"
    else
      sed -e "s#@WORK@#$WORK/data/gw$i#g" -e "s#@UPSTREAM@#http://127.0.0.1:3000#g" \
        -e "s#@BACKOFF@#1s#g" bench/hookwarden-queue.toml >"$conf"
    fi
    # Each process on its own ports: 8100+i for webhooks, 9100+i for its admin API.
    sed -i -E -e "0,/^listen = .*/s//listen = \"127.0.0.1:$((8100 + i))\"/" \
      -e "/^\[admin\]/,/^listen/s/^listen = .*/listen = \"127.0.0.1:$((9100 + i))\"/" "$conf"
    if [ "$mode" = redis ]; then
      sed -i "s#^\[queue\]#[queue]\nbackend = \"redis\"\nredis_url = \"redis+unix://$WORK/data/redis.sock\"#" "$conf"
    fi
    taskset -c 0 "$BIN/hookwarden" run --config "$conf" 2>>"$WORK/hookwarden.log" &
    gws+=($!)
  done
  for i in $(seq 1 "$n"); do wait_port $((8100 + i)); done

  # Warm-up: connections open, scripts loaded, caches filled; then the queue drains.
  local before
  before=$(received)
  drain $(( before + $(load "$n" 1s) ))
  local start_count gw_before redis_before=0 accepted
  start_count=$(received)
  gw_before=$(cpu_ticks "${gws[@]}")
  [ -z "$redis" ] || redis_before=$(cpu_ticks "$redis")
  accepted=$(load "$n" "$DURATION")
  drain $(( start_count + accepted ))
  local gw_ticks redis_ticks=0
  gw_ticks=$(( $(cpu_ticks "${gws[@]}") - gw_before ))
  [ -z "$redis" ] || redis_ticks=$(( $(cpu_ticks "$redis") - redis_before ))
  for pid in "${gws[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  [ -z "$redis" ] || { kill "$redis"; wait "$redis" 2>/dev/null || true; }
  python3 - "$mode" "$n" "$accepted" "$gw_ticks" "$redis_ticks" "$(getconf CLK_TCK)" "$WORK"/load*.json >>"$OUT" <<'EOF'
import json, sys
mode, n, accepted, gw, redis, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
loads = [json.load(open(a)) for a in sys.argv[7:]]
seconds = max(l["seconds"] for l in loads)
print(json.dumps({
    "mode": mode, "processes": n, "accepted": accepted,
    "accepted_per_s": accepted / seconds,
    "errors": sum(l["errors"] for l in loads),
    # Each load generator's own p99; the worst of them (histograms are not merged).
    "p99_us": max(l["p99_us"] for l in loads),
    "p50_us": max(l["p50_us"] for l in loads),
    "gateway_us_per_event": gw * 1e6 / hz / max(accepted, 1),
    "redis_us_per_event": redis * 1e6 / hz / max(accepted, 1) if mode == "redis" else None,
}))
EOF
  tail -n 1 "$OUT"
}


echo "== replicas on one Redis; closed loop, $CONNECTIONS connections, $DURATION per round"
round sync 1
round disk 1
for n in $COUNTS; do round redis "$n"; done
python3 bench/scaleout_report.py "$OUT" bench/results/scaleout.svg
