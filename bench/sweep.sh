#!/usr/bin/env bash
# The worst delay of a `queued` answer while the retention sweep deletes EVENTS delivered
# events (docs/performance.md "Queue").
#
#   bash bench/sweep.sh                  # ~5 minutes for 1,000,000 events
#
# The gateway (pinned to core 0, the app and the load on core 1) first stores and
# delivers EVENTS unique 1 KiB SmartCV events with a 7-day retention. Then an open-loop
# load of RATE requests/s runs for DURATION; a few seconds in, the configuration is
# reloaded (SIGHUP) with a 1-second retention and dedup ttl, so the next sweep (within a
# minute) deletes all of them while the load goes on. The load's latency percentiles and
# maximum cover the whole sweep; the gateway's log says how long the sweep took.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
RATE=${RATE:-2000}
# Enough connections that the load generator never waits for one of its own: with 32,
# at 2,000 requests/s a connection has 16 ms per request, and an answer slower than that
# queues the generator's later sends (which the measure, from the scheduled send time,
# then counts as the gateway's delay).
CONNECTIONS=${CONNECTIONS:-256}
DURATION=${DURATION:-90s}

# shellcheck source=bench/common.sh
source bench/common.sh
start_bench

config() { # RETENTION DEDUP_TTL
  sed -e "s#@WORK@#$WORK#g" -e "s#@UPSTREAM@#http://127.0.0.1:3000#g" -e "s#@BACKOFF@#1s#g" \
    -e "s#^retention = .*##" -e "s#^ttl = .*#ttl = \"$2\"#" \
    -e "s#^\[queue\]#[queue]\nretention = \"$1\"#" \
    -e "s#^level = .*#level = \"warn,hookwarden::queue::sweep=${SWEEP_LOG:-info}\"#" \
    bench/hookwarden-queue.toml >"$WORK/queue.toml"
}

metric() { # SERIES
  python3 - "$1" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:9094/metrics").read().decode()
print(next((int(float(l.rsplit(" ", 1)[1])) for l in text.splitlines() if l.startswith(sys.argv[1] + " ")), 0))
EOF
}

config 7d 24h
taskset -c 0 "$BIN/hookwarden" run --config "$WORK/queue.toml" 2>"$WORK/hookwarden.log" &
GW=$!
PIDS+=($GW)
wait_port 8084

QUEUED='hookwarden_requests_total{outcome="queued",route="smartcv"}'
PENDING='hookwarden_queue_events{route="smartcv",state="pending"}'
echo "== storing and delivering $EVENTS events"
while [ "$(metric "$QUEUED")" -lt "$EVENTS" ]; do
  taskset -c 1 "$BIN/examples/loadgen" --target 127.0.0.1:8084 --connections 32 --duration 10s \
    --body-size 1024 --duplicates 0 >/dev/null
  echo "  $(metric "$QUEUED") queued, $(metric "$PENDING") pending"
done
while [ "$(metric "$PENDING")" -gt 0 ]; do sleep 1; done

echo "== open loop at $RATE req/s for $DURATION; the sweep deletes them meanwhile"
[ "${RELOAD:-1}" = 1 ] && ( sleep 5; config 1s 1s; kill -HUP "$GW" ) &
taskset -c 1 "$BIN/examples/loadgen" --target 127.0.0.1:8084 --connections "$CONNECTIONS" --duration "$DURATION" \
  --body-size 1024 --duplicates 0 --rate "$RATE" | tee "$WORK/load.json"
[ -n "${KEEP_LOG:-}" ] && cp "$WORK/hookwarden.log" "$KEEP_LOG"; grep "past their retention" "$WORK/hookwarden.log" | tail -n 3 || echo "(no sweep finished within the load)"
