# Shared by the scripts in bench/ (sourced, not run).

# wait_port PORT [SECONDS]: returns once 127.0.0.1:PORT accepts connections (polling
# is all a shell can do for another process's socket); exits after SECONDS (default 5).
wait_port() {
  local tries=$(( ${2:-5} * 20 ))
  for _ in $(seq 1 "$tries"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  exit 1
}

# start_bench: builds the gateway and the bench examples, makes a work folder ($WORK,
# removed on exit with every process in $PIDS) and starts the stand-in app on core 1
# at 127.0.0.1:3000. Sets BIN, WORK and PIDS.
start_bench() {
  cargo build --release --locked --bin hookwarden --examples 2>&1 | tail -n 1
  BIN=target/release
  WORK=$(mktemp -d)
  PIDS=()
  trap bench_cleanup EXIT
  taskset -c 1 "$BIN/examples/bench-upstream" 127.0.0.1:3000 &
  PIDS+=($!)
  wait_port 3000
}

bench_cleanup() {
  for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
