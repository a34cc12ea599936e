# Helpers shared by bench/compare.sh and bench/smoke.sh: free ports, starting servers pinned to
# a CPU, waiting for them, stopping them. Source it from the repository root.

BENCH_TMP=${BENCH_TMP:-$(mktemp -d /tmp/mcp-bench.XXXXXX)}
BENCH_PIDS=()

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID [SECONDS]: until PORT accepts connections; fails if PID died first.
wait_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + ${3:-30}))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# spawn LOG CMD...: starts CMD in the background with output to LOG; sets SPAWNED_PID.
spawn() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  SPAWNED_PID=$!
  BENCH_PIDS+=("$SPAWNED_PID")
}

# stop PID...: TERM, then KILL what is still there after 5 s.
stop() {
  local pid
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

stop_all() {
  ((${#BENCH_PIDS[@]})) && stop "${BENCH_PIDS[@]}"
  BENCH_PIDS=()
}

# wait_quiet [MAX_SECONDS]: waits until no CPU is more than 15% busy over one second, so that
# another job's compile does not land in a measurement; gives up (with a note) after
# MAX_SECONDS. Call it after the server started (an idle server costs nothing).
wait_quiet() {
  local deadline=$((SECONDS + ${1:-60})) busiest
  while ((SECONDS < deadline)); do
    busiest=$(python3 -c '
import time
def read():
    rows = [l.split() for l in open("/proc/stat") if l.startswith("cpu") and l[3].isdigit()]
    return [(sum(map(int, r[1:9])), int(r[4]) + int(r[5])) for r in rows]
a = read(); time.sleep(1); b = read()
print(max(round(100 * (1 - (ib - ia) / max(tb - ta, 1))) for (ta, ia), (tb, ib) in zip(a, b)))')
    ((busiest <= 15)) && return 0
  done
  printf '==> note: the machine stayed busy (a CPU at %s%%); measuring anyway\n' "$busiest" >&2
}
