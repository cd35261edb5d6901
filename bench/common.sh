# Shared by bench/run.sh and bench/instructions.sh (sourced, not run).

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
