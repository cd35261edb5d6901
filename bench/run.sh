#!/usr/bin/env bash
# Side-by-side benchmark: the cost of a verified webhook through hookwarden, against the
# same traffic sent to the app directly, through a bare hyper pass-through proxy, and
# through nginx proxy_pass with upstream keep-alive.
#
#   apt-get install -y nginx-light     # once
#   bash bench/run.sh                  # ~17 minutes; ROUNDS=1 DURATION=3s for a quick look
#
# The proxy under test is pinned to core 0, the load generator and the app to core 1
# (taskset). Rounds interleave the configurations so that drift of a noisy machine hits
# all of them alike. Per configuration it reports requests/s (closed loop), latency
# percentiles at 50% of the slowest proxy's max rate (open loop, measured from the
# scheduled send time), CPU microseconds per request of the proxy process (from /proc,
# user and system apart) and its peak RSS; then the RSS of hookwarden holding 1M event
# ids. A round whose app did not receive exactly the events answered 2xx (duplicates
# excepted) is void. Then queue delivery (QUEUE=0 skips it): the same gateway with
# `delivery = "queue"` beside `sync`, closed and open loop, the store's bytes per event,
# and a backlog of BACKLOG pending events with the app down (0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-32}
DUPLICATES=${DUPLICATES:-0.1}
BODY_SIZES=${BODY_SIZES:-"1024 4096 20480"}
SCHEMES=${SCHEMES:-"smartcv standard-webhooks"}
DEDUP_IDS=${DEDUP_IDS:-1000000}   # 0 skips the dedup memory measurement
QUEUE=${QUEUE:-1}                 # 0 skips the queue delivery section
BACKLOG=${BACKLOG:-1000000}       # pending events of the backlog measurement; 0 skips it
# Configurations to compare; hookwarden-mt forces the multi-threaded runtime (hookwarden
# chooses the current-thread one when, as here, it is pinned to one core).
read -r -a CONFIGS <<<"${CONFIGS:-direct hyper-pass nginx hookwarden}"
OUT=${OUT:-bench/results}

for tool in nginx taskset python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case $tool in
      nginx) echo "nginx is missing: apt-get install -y nginx-light" >&2 ;;
      *) echo "$tool is missing" >&2 ;;
    esac
    exit 1
  fi
done
if [ "$(nproc)" -lt 2 ]; then
  echo "needs 2 cores (proxy on one, load and app on the other)" >&2
  exit 1
fi

cargo build --release --locked --bin hookwarden --examples 2>&1 | tail -n 1
BIN=target/release
WHSEC=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
mkdir -p "$OUT"
RAW="$OUT/raw.jsonl"
: > "$RAW"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

sed "s#@WORK@#$WORK#g" bench/nginx.conf > "$WORK/nginx.conf"

taskset -c 1 "$BIN/examples/bench-upstream" 127.0.0.1:3000 &
PIDS+=($!)

# shellcheck source=bench/common.sh
source bench/common.sh
wait_port 3000

# Starts one configuration's proxy on core 0; prints "PORT PID" (PID 0 for direct).
start() {
  case $1 in
    direct) echo "3000 0" ;;
    hyper-pass)
      taskset -c 0 "$BIN/examples/passthrough" 127.0.0.1:8081 http://127.0.0.1:3000 &
      wait_port 8081 >&2
      echo "8081 $!" ;;
    nginx)
      taskset -c 0 nginx -c "$WORK/nginx.conf" &
      wait_port 8082 >&2
      echo "8082 $!" ;;
    hookwarden)
      taskset -c 0 "$BIN/hookwarden" run --config bench/hookwarden.toml 2>>"$WORK/hookwarden.log" &
      wait_port 8083 >&2
      echo "8083 $!" ;;
    hookwarden-mt)
      HOOKWARDEN_RUNTIME=multi_thread taskset -c 0 "$BIN/hookwarden" run --config bench/hookwarden.toml 2>>"$WORK/hookwarden.log" &
      wait_port 8083 >&2
      echo "8083 $!" ;;
    hookwarden-sync)
      # The queue section's baseline: the same gateway as hookwarden.
      taskset -c 0 "$BIN/hookwarden" run --config bench/hookwarden.toml 2>>"$WORK/hookwarden.log" &
      wait_port 8083 >&2
      echo "8083 $!" ;;
    hookwarden-queue | queue-backlog)
      # A fresh spool each time, so that its size is this round's.
      rm -rf "$WORK/spool"
      if [ "$1" = queue-backlog ]; then
        # The app down (nothing listens on port 9): every event waits, retried hourly.
        queue_config http://127.0.0.1:9 1h
      else
        queue_config http://127.0.0.1:3000 1s
      fi
      taskset -c 0 "$BIN/hookwarden" run --config "$WORK/queue.toml" 2>>"$WORK/hookwarden.log" &
      wait_port 8084 >&2
      echo "8084 $!" ;;
  esac
}

queue_config() {
  sed -e "s#@WORK@#$WORK#g" -e "s#@UPSTREAM@#$1#g" -e "s#@BACKOFF@#$2#g" \
    bench/hookwarden-queue.toml > "$WORK/queue.toml"
}

# metric PORT SERIES: a sample of the gateway's /metrics on admin PORT (0 when absent).
metric() {
  python3 - "$1" "$2" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(next((int(float(l.rsplit(" ", 1)[1])) for l in text.splitlines() if l.startswith(sys.argv[2] + " ")), 0))
EOF
}

# The events the app has received so far.
app_count() {
  python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:3000/__count").read().decode())'
}

PENDING='hookwarden_queue_events{route="smartcv",state="pending"}'

# Waits (at most 60 s) until the queue gateway has delivered everything it accepted.
drain() {
  for _ in $(seq 1 1200); do
    [ "$(metric 9094 "$PENDING")" = 0 ] && return 0
    sleep 0.05
  done
  echo "  the queue did not drain" >&2
}

# Stops a proxy and waits until it is gone (its port is free for the next round).
stop() {
  [ "$1" = 0 ] && return 0
  kill "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}

# "utime stime" clock ticks of a process and its children (nginx's worker).
ticks() {
  local user=0 sys=0 pid u s
  for pid in $1 $(pgrep -P "$1" 2>/dev/null || true); do
    [ -r "/proc/$pid/stat" ] || continue
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u)) sys=$((sys + s))
  done
  echo "$user $sys"
}

# Peak resident set (kB) of a process and its children.
peak_rss() {
  local peak=0 pid v
  for pid in $1 $(pgrep -P "$1" 2>/dev/null || true); do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak" ] && peak=$v
  done
  echo "$peak"
}

route_args() {
  case $1 in
    smartcv) echo "--path /webhooks/smartcv --scheme smartcv --secret bench-secret" ;;
    standard-webhooks) echo "--path /webhooks/svix --scheme standard-webhooks --secret $WHSEC" ;;
  esac
}

# measure CONFIG SCHEME SIZE [RATE]: one round, appended to $RAW as a JSON line.
measure() {
  local config=$1 scheme=$2 size=$3 rate=${4:-} port pid u0=0 s0=0 u1=0 s1=0 result extra=() queued="{}" before=0
  read -r port pid < <(start "$config")
  [ -n "$rate" ] && extra=(--rate "$rate")
  # shellcheck disable=SC2046
  taskset -c 1 "$BIN/examples/loadgen" --target "127.0.0.1:$port" $(route_args "$scheme") \
    --connections "$CONNECTIONS" --duration "$WARMUP" --body-size "$size" --duplicates "$DUPLICATES" >/dev/null
  if [ "$config" = hookwarden-queue ]; then
    drain
    before=$(app_count)
  fi
  [ "$pid" = 0 ] || read -r u0 s0 < <(ticks "$pid")
  # shellcheck disable=SC2046
  result=$(taskset -c 1 "$BIN/examples/loadgen" --target "127.0.0.1:$port" $(route_args "$scheme") \
    --connections "$CONNECTIONS" --duration "$DURATION" --body-size "$size" --duplicates "$DUPLICATES" \
    --count-url http://127.0.0.1:3000/__count "${extra[@]}")
  [ "$pid" = 0 ] || read -r u1 s1 < <(ticks "$pid")
  local rss=$( [ "$pid" = 0 ] && echo 0 || peak_rss "$pid")
  if [ "$config" = hookwarden-queue ]; then
    # What the app got once the queue delivered everything accepted, and what the
    # store holds per event (envelope, indexes, attempt rows, WAL).
    drain
    queued=$(printf '{"upstream_received": %s, "spool_bytes": %s, "stored": %s}' \
      "$(( $(app_count) - before ))" "$(du -sb "$WORK/spool" | cut -f1)" \
      "$(metric 9094 'hookwarden_requests_total{outcome="queued",route="smartcv"}')")
  fi
  stop "$pid"
  python3 - "$config" "$((u1 - u0))" "$((s1 - s0))" "$rss" "$(getconf CLK_TCK)" "$result" "$queued" >>"$RAW" <<'EOF'
import json, sys
config, user, system, rss, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
result = json.loads(sys.argv[6])
result.update(json.loads(sys.argv[7]))
# No ticks at all: no proxy process (direct), so no CPU figures.
per_request = lambda ticks: ticks / hz * 1e6 / result["requests"] if user + system else None
result.update(config=config, cpu_us_per_request=per_request(user + system), user_us_per_request=per_request(user),
              sys_us_per_request=per_request(system), peak_rss_kb=rss or None)
# Duplicates are answered by hookwarden itself; the others forward them.
expected = result["ok"] - (result["duplicates"] if config.startswith("hookwarden") else 0)
result["void"] = result["upstream_received"] != expected
print(json.dumps(result))
EOF
  tail -n 1 "$RAW" | python3 bench/report.py --line
}

N=${#CONFIGS[@]}
echo "== throughput (closed loop, $CONNECTIONS connections, $DURATION per round, $ROUNDS rounds)"
for round in $(seq 1 "$ROUNDS"); do
  for scheme in $SCHEMES; do
    for size in $BODY_SIZES; do
      # Rotate the order every round.
      for i in $(seq 0 $((N - 1))); do
        measure "${CONFIGS[$(((i + round) % N))]}" "$scheme" "$size"
      done
    done
  done
done

RATE=$(python3 bench/report.py "$RAW" --half-rate smartcv 1024 "${CONFIGS[@]}")
echo "== latency (open loop at $RATE req/s: half the slowest proxy's max, smartcv 1 KiB)"
for round in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((N - 1))); do
    measure "${CONFIGS[$(((i + round) % N))]}" smartcv 1024 "$RATE"
  done
done

if [ "$DEDUP_IDS" -gt 0 ]; then
echo "== hookwarden holding $DEDUP_IDS event ids"
read -r port pid < <(start hookwarden)
sent=0
while [ "$sent" -lt "$DEDUP_IDS" ]; do
  taskset -c 1 "$BIN/examples/loadgen" --target "127.0.0.1:$port" $(route_args smartcv) \
    --connections "$CONNECTIONS" --duration 10s --body-size 1024 --duplicates 0 >/dev/null
  sent=$(python3 -c 'import urllib.request; t = urllib.request.urlopen("http://127.0.0.1:9093/metrics").read().decode(); print(next(int(float(l.split()[1])) for l in t.splitlines() if l.startswith("hookwarden_dedup_entries ")))')
  echo "  $sent ids"
done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
stop "$pid"
echo "{\"config\": \"dedup\", \"ids\": $sent, \"rss_kb\": $rss}" >>"$RAW"
fi

if [ "$QUEUE" = 1 ]; then
QCONFIGS=(hookwarden-sync hookwarden-queue)
echo "== queue delivery: sync and queue side by side (closed loop, smartcv 1 KiB, fsync on)"
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1; do
    measure "${QCONFIGS[$(((i + round) % 2))]}" smartcv 1024
  done
done
QRATE=$(python3 bench/report.py "$RAW" --half-rate smartcv 1024 hookwarden-queue)
echo "== queue delivery: open loop at $QRATE req/s (half the queue's max)"
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1; do
    measure "${QCONFIGS[$(((i + round) % 2))]}" smartcv 1024 "$QRATE"
  done
done
fi

if [ "$QUEUE" = 1 ] && [ "$BACKLOG" -gt 0 ]; then
echo "== queue holding a backlog of $BACKLOG pending 1 KiB events (the app down)"
read -r port pid < <(start queue-backlog)
pending=0
while [ "$pending" -lt "$BACKLOG" ]; do
  # shellcheck disable=SC2046
  taskset -c 1 "$BIN/examples/loadgen" --target "127.0.0.1:$port" $(route_args smartcv) \
    --connections "$CONNECTIONS" --duration 10s --body-size 1024 --duplicates 0 >/dev/null
  pending=$(metric 9094 "$PENDING")
  echo "  $pending pending"
done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
disk=$(du -sb "$WORK/spool" | cut -f1)
stop "$pid"
echo "{\"config\": \"queue-backlog\", \"pending\": $pending, \"disk_bytes\": $disk, \"rss_kb\": $rss}" >>"$RAW"
fi

python3 bench/report.py "$RAW" --out "$OUT" "${CONFIGS[@]}"
