#!/usr/bin/env bash
# The queue on Redis against the queue on disk (docs/performance.md "Queue on Redis"):
# accepted events/s (closed loop) and the `queued` answer's latency, for Redis with its
# append-only file synced every second and at every write.
#
#   bash bench/redis.sh                        # ~2 minutes; needs redis-server
#   SERVER=valkey-server bash bench/redis.sh   # Valkey 8: each write also waits (WAITAOF)
#                                              # until it is in the append-only file
#
# The gateway is pinned to core 0; Redis, the app and the load generator to core 1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}

SERVER=${SERVER:-redis-server}
command -v "$SERVER" >/dev/null || { echo "$SERVER is missing" >&2; exit 1; }
# shellcheck source=bench/common.sh
source bench/common.sh
start_bench

# round STORE [FSYNC]: one closed-loop round; prints the load generator's figures.
round() {
  local store=$1 fsync=${2:-} redis=0 gw
  rm -rf "$WORK/data" && mkdir -p "$WORK/data"
  sed -e "s#@WORK@#$WORK/data#g" -e "s#@UPSTREAM@#http://127.0.0.1:3000#g" -e "s#@BACKOFF@#1s#g" \
    bench/hookwarden-queue.toml >"$WORK/queue.toml"
  if [ "$store" = redis ]; then
    taskset -c 1 "$SERVER" --port 0 --unixsocket "$WORK/data/redis.sock" --save "" \
      --appendonly yes --appendfsync "$fsync" --dir "$WORK/data" >/dev/null &
    redis=$!
    for _ in $(seq 1 100); do [ -S "$WORK/data/redis.sock" ] && break; sleep 0.05; done
    sed -i "s#^\[queue\]#[queue]\nbackend = \"redis\"\nredis_url = \"redis+unix://$WORK/data/redis.sock\"#" "$WORK/queue.toml"
  fi
  taskset -c 0 "$BIN/hookwarden" run --config "$WORK/queue.toml" 2>>"$WORK/hookwarden.log" &
  gw=$!
  wait_port 8084
  taskset -c 1 "$BIN/examples/loadgen" --target 127.0.0.1:8084 --connections 32 --duration 1s \
    --body-size 1024 --duplicates 0.1 >/dev/null
  local out
  out=$(taskset -c 1 "$BIN/examples/loadgen" --target 127.0.0.1:8084 --connections 32 \
    --duration "$DURATION" --body-size 1024 --duplicates 0.1)
  kill "$gw"; wait "$gw" 2>/dev/null || true
  [ "$redis" = 0 ] || { kill "$redis"; wait "$redis" 2>/dev/null || true; }
  python3 - "$store${fsync:+ appendfsync $fsync}" "$out" <<'EOF'
import json, sys
r = json.loads(sys.argv[2])
print(f"  {sys.argv[1]:28} {r['rps']:8.0f} req/s  p50 {r['p50_us']:6} us  p99 {r['p99_us']:6} us")
EOF
}

echo "== queue delivery on $SERVER, closed loop, 32 connections, $DURATION per round"
for _ in $(seq 1 "$ROUNDS"); do
  round disk
  round redis everysec
  round redis always
done
